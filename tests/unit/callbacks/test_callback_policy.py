"""Where callbacks may go (services/callback_policy.py): http(s) to public addresses, or to networks
the operator allows; checked at submit and again, against the name's current address, at delivery."""

from __future__ import annotations

import httpx
import pytest

from events.topics import Topics
from services.callback_policy import CallbackPolicy, CallbackRefused
from services.callbacks.service import CallbackService, CallbackSettings

STRICT = CallbackPolicy()
PUBLIC = "93.184.216.34"


def dns(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host}: name does not resolve")
        return table[host]
    return resolve


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "gopher://example.com/x", "ftp://example.com/x", "not a url", "example.com/x",
    "http://", "http:///x", "http://[::1", "http://exa mple.com/", "http://example.com/\nx", "javascript:alert(1)",
    "http://example.com:0/", "http://example.com:99999/",
])
def test_only_http_and_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(CallbackRefused):
        STRICT.check_url(url)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/x", "http://127.1.2.3/", "http://[::1]/", "http://0.0.0.0/", "http://[::]/",
    "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/", "http://[fd00::1]/", "http://100.64.0.1/",
    "http://169.254.169.254/computeMetadata/v1/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/",
    "http://[fd00:ec2::254]/", "http://metadata.google.internal/computeMetadata/v1/", "http://localhost:9/x",
    "http://api.localhost/x", "https://224.0.0.1/",
])
def test_loopback_private_link_local_and_metadata_addresses_are_refused(url: str) -> None:
    with pytest.raises(CallbackRefused, match="address: callbacks go to public addresses only"):
        STRICT.check_url(url)


def test_public_urls_pass() -> None:
    for url in (f"http://{PUBLIC}/done", "https://example.com/hook?x=1", "HTTPS://Example.COM:8443/h"):
        STRICT.check_url(url)


def test_an_operator_allow_list_lets_its_networks_through_and_nothing_else() -> None:
    policy = CallbackPolicy.parse("127.0.0.1/32, 10.0.0.0/8")
    policy.check_url("http://127.0.0.1:8080/x")
    policy.check_url("http://10.1.2.3/x")
    policy.check_url("http://[::ffff:127.0.0.1]/x")  # the same address, IPv4-mapped
    for refused in ("http://127.0.0.2/", "http://192.168.1.1/", "http://169.254.169.254/"):
        with pytest.raises(CallbackRefused):
            policy.check_url(refused)
    with pytest.raises(ValueError, match="not a network"):
        CallbackPolicy.parse("10.0.0.0/8,bogus")


async def test_a_name_that_resolves_to_a_refused_address_is_refused_at_submit() -> None:
    resolver = dns({"internal.example": ["10.0.0.5"], "mixed.example": [PUBLIC, "127.0.0.1"],
                    "hook.example": [PUBLIC]})
    for url in ("http://internal.example/x", "http://mixed.example/x"):
        with pytest.raises(CallbackRefused):
            await STRICT.check_resolves(url, resolver)
    await STRICT.check_resolves("http://hook.example/x", resolver)
    await STRICT.check_resolves("http://not-yet.example/x", resolver)  # unresolvable now: checked at delivery


async def test_delivery_connects_to_the_address_it_checked() -> None:
    target, headers, extensions = await STRICT.resolve_for_delivery(
        "https://hook.example:8443/done?x=1", dns({"hook.example": [PUBLIC]}))
    assert target == f"https://{PUBLIC}:8443/done?x=1"
    assert headers == {"Host": "hook.example:8443"} and extensions == {"sni_hostname": "hook.example"}


async def test_dns_rebinding_is_refused_at_delivery_and_nothing_is_posted() -> None:
    """The name was public at submit; by delivery it resolves to loopback."""
    posted: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: posted.append(r) or httpx.Response(200)))
    service = CallbackService(None, Topics(prefix="t."), "postgresql://unused",  # type: ignore[arg-type]
                              CallbackSettings(retry_delay_s=60), client=client,
                              resolver=dns({"rebind.example": ["127.0.0.1"]}))
    status, error = await service._post("http://rebind.example/done", {"id": 1})
    assert status is None and error is not None and "loopback" in error and error.startswith("not sent:")
    assert posted == []


async def test_delivery_posts_to_the_pinned_address_with_the_names_host_header() -> None:
    seen: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    service = CallbackService(None, Topics(prefix="t."), "postgresql://unused",  # type: ignore[arg-type]
                              CallbackSettings(retry_delay_s=0), client=client,
                              resolver=dns({"hook.example": [PUBLIC]}))
    assert await service._post("http://hook.example/done", {"id": 1}) == (200, None)
    assert str(seen[0].url) == f"http://{PUBLIC}/done" and seen[0].headers["host"] == "hook.example"
