"""/metrics names users: a front end listening beyond loopback serves it to an operator's token only."""

from __future__ import annotations

import httpx
import pytest

from services.front.asgi_app import create_app
from services.front.startup import is_loopback

pytestmark = pytest.mark.postgres


def _client(front, need_token: bool) -> httpx.AsyncClient:
    app = create_app(front.deps, metrics=True, metrics_need_token=need_token)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://front")


async def test_beyond_loopback_metrics_need_an_operators_token(front):
    await front.sql("UPDATE front_users SET is_operator = true WHERE name = 'alice'")
    async with _client(front, need_token=True) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401, anonymous.text
        assert (await client.get("/metrics", headers=front.bob)).status_code == 403
        operator = await client.get("/metrics", headers=front.alice)
        assert operator.status_code == 200 and "squall_http_request_duration_seconds" in operator.text


async def test_on_loopback_metrics_stay_open_to_a_local_scraper(front):
    async with _client(front, need_token=False) as client:
        assert (await client.get("/metrics")).status_code == 200


async def test_api_answers_say_nosniff(front):
    r = await front.client.get("/api/v1alpha/batches")
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                           ("localhost", True), ("0.0.0.0", False), ("::", False),
                                           ("10.0.0.5", False), ("front.example", False)])
def test_which_listen_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
