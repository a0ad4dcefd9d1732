"""Callback URLs at submit: http(s) to public addresses only, unless the operator allows a network
(400 naming the field); a host name is resolved and its addresses checked too."""

from __future__ import annotations

import dataclasses

import pytest
from front_specs import batch, job

from services.callback_policy import CallbackPolicy

pytestmark = pytest.mark.postgres

REFUSED = ["file:///etc/passwd", "gopher://example.com/", "not a url", "http://127.0.0.1:8080/done",
           "http://[::1]/", "http://169.254.169.254/computeMetadata/v1/", "http://10.0.0.1/",
           "http://localhost:9/x", "http://metadata.google.internal/"]


def fake_dns(table):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("does not resolve")
        return table[host]
    return resolve


@pytest.mark.parametrize("url", REFUSED)
async def test_a_batch_callback_that_is_not_a_public_http_url_gets_400(front, url):
    for path, body in (("/api/v1alpha/batches/create", batch(0, callback=url)),
                       ("/api/v1alpha/batches/create-fast",
                        {"batch": batch(1, callback=url), "bunch": [job(1)], "job_groups": []})):
        r = await front.client.post(path, json=body)
        assert r.status_code == 400, (path, url, r.text)
        assert r.json()["message"].startswith("batch.callback:"), r.json()
    assert await front.sql("SELECT count(*) FROM front_batches") == [(0,)]


async def test_a_job_group_callback_is_checked_too(front):
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(0, n_job_groups=1), "bunch": [],
        "job_groups": [{"job_group_id": 1, "callback": "http://192.168.0.7/x"}]})
    assert r.status_code == 400 and r.json()["message"].startswith("job_groups[0].callback:"), r.text


async def test_a_name_resolving_to_a_private_address_gets_400_and_a_public_one_is_accepted(front):
    front.deps.resolver = fake_dns({"intranet.example": ["10.1.2.3"], "hooks.example": ["93.184.216.34"]})
    r = await front.client.post("/api/v1alpha/batches/create",
                                json=batch(0, token="a", callback="http://intranet.example/done"))
    assert r.status_code == 400 and "10.1.2.3" in r.json()["message"], r.text
    r = await front.client.post("/api/v1alpha/batches/create",
                                json=batch(0, token="b", callback="https://hooks.example/done"))
    assert r.status_code == 200, r.text


async def test_an_allowed_network_is_accepted(front):
    front.deps.rules = dataclasses.replace(front.deps.rules, callbacks=CallbackPolicy.parse("127.0.0.1/32"))
    r = await front.client.post("/api/v1alpha/batches/create", json=batch(0, callback="http://127.0.0.1:8080/done"))
    assert r.status_code == 200, r.text
    r = await front.client.post("/api/v1alpha/batches/create", json=batch(0, token="t2", callback="http://10.0.0.1/"))
    assert r.status_code == 400, r.text
