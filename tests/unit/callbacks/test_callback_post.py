"""How the callback service posts: retries, and what it records for receivers and URLs that fail."""

from __future__ import annotations

import httpx

from events.topics import Topics
from services.callbacks.service import CallbackService, CallbackSettings

NO_WAIT = CallbackSettings(retry_delay_s=0)
PUBLIC = "93.184.216.34"  # what the receiver's name "r" resolves to in these tests


async def public_dns(host: str, port: int) -> list[str]:
    return [PUBLIC]


def service(handler) -> CallbackService:  # type: ignore[no-untyped-def]
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    # the pool is never opened: posting needs no database
    return CallbackService(None, Topics(prefix="t."), "postgresql://unused", NO_WAIT, client=client,  # type: ignore[arg-type]
                           resolver=public_dns)


async def test_a_5xx_is_tried_three_times_and_a_4xx_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503 if request.url.path == "/busy" else 404)

    s = service(handler)
    assert await s._post("http://r/busy", {"id": 1}) == (503, "the receiver answered 503")
    assert await s._post("http://r/gone", {"id": 1}) == (404, "the receiver answered 404")
    assert calls == ["/busy"] * 3 + ["/gone"]


async def test_a_receiver_that_recovers_counts_as_delivered() -> None:
    answers = [502, 200]
    s = service(lambda request: httpx.Response(answers.pop(0)))
    assert await s._post("http://r/x", {"id": 1}) == (200, None)


async def test_malformed_urls_are_recorded_not_raised_and_not_retried() -> None:
    # the real transport: it refuses these before any connection is made
    s = CallbackService(None, Topics(prefix="t."), "postgresql://unused",  # type: ignore[arg-type]
                        CallbackSettings(retry_delay_s=60))  # a retry would make this test hang
    for url in ("http://[::1", "not a url", "ftp://host/x"):
        status, error = await s._post(url, {"id": 1})
        assert status is None and error is not None and error.startswith("not sent:"), (url, error)
    await s.client.aclose()
