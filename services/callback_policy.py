"""Where batch and job-group callbacks may be POSTed: http or https, never to this machine, its
private networks or a cloud's metadata server, unless the operator allows those networks.

A callback is a request squall makes on a user's behalf from inside the deployment; without these
rules any user could make squall POST to internal services (blind SSRF). The front end checks a
callback URL at submit (`check_url`, then `check_resolves`: 400 when it names or resolves to a
refused address); the callback service checks again right before each delivery and connects to
the very address it checked (`resolve_for_delivery`), so a name that resolved to a public
address at submit and to 127.0.0.1 later (DNS rebinding) is refused then too.

    policy = CallbackPolicy.parse("10.0.0.0/8,127.0.0.1/32")   # --callback-allowed-networks
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048
SUBMIT_RESOLVE_TIMEOUT_S = 2.0
# Names of cloud metadata servers, and the addresses they stand for even where they do not resolve.
METADATA_HOSTS = {"metadata.google.internal": "169.254.169.254", "metadata.goog": "169.254.169.254",
                  "metadata": "169.254.169.254", "instance-data": "169.254.169.254"}
ALLOWED_NETWORKS_ENV = "SQUALL_CALLBACK_ALLOWED_NETWORKS"


class CallbackRefused(ValueError):
    """The URL may not be used for a callback; the message says why and what is allowed."""


@dataclass(frozen=True)
class CallbackPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> CallbackPolicy:
        """Comma-separated networks (CIDR or single addresses) the operator allows; ValueError naming a bad one."""
        networks = []
        for item in (text or "").split(","):
            if item.strip():
                try:
                    networks.append(ipaddress.ip_network(item.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"--callback-allowed-networks: {item.strip()!r} is not a network "
                                     "(e.g. 10.0.0.0/8 or 127.0.0.1)") from None
        return cls(tuple(networks))

    def check_address(self, address: str, host: str) -> None:
        """CallbackRefused unless `address` is public or in an allowed network."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
        for candidate in (ip, mapped) if mapped else (ip,):
            if any(candidate in net for net in self.allowed_networks if net.version == candidate.version):
                return
        kind = _refused_kind(mapped or ip)
        if kind is not None:
            shown = host if host == str(ip) else f"{host} ({ip})"
            raise CallbackRefused(f"{shown} is a {kind} address: callbacks go to public addresses only, unless "
                                  "an operator allows the network (--callback-allowed-networks)")

    def check_url(self, url: str) -> SplitResult:
        """The URL's syntax, scheme, and its host when that is an address or a known internal name."""
        parts = _split(url)
        host = parts.hostname or ""
        if host in METADATA_HOSTS:
            self.check_address(METADATA_HOSTS[host], host)
        if host == "localhost" or host.endswith(".localhost"):
            self.check_address("127.0.0.1", host)
        if _is_address(host):
            self.check_address(host, host)
        return parts

    async def check_resolves(self, url: str, resolver: Resolver | None = None,
                             timeout_s: float = SUBMIT_RESOLVE_TIMEOUT_S) -> None:
        """At submit: refuse a name that resolves to a refused address. A name that does not resolve
        (yet), or not in time, is left to the check at delivery."""
        parts = self.check_url(url)
        host = parts.hostname or ""
        if _is_address(host):
            return
        try:
            addresses = await asyncio.wait_for((resolver or system_resolver)(host, _port(parts)), timeout_s)
        except (OSError, TimeoutError):
            return
        for address in addresses:
            self.check_address(address, host)

    async def resolve_for_delivery(self, url: str, resolver: Resolver | None = None) -> tuple[str, dict[str, str],
                                                                                               dict[str, str]]:
        """(URL naming the checked address, headers, httpx extensions) to POST to, so the connection goes
        to the address just checked. CallbackRefused for a refused address; OSError when it does not resolve."""
        parts = self.check_url(url)
        host = parts.hostname or ""
        if _is_address(host):
            return url, {}, {}
        addresses = await (resolver or system_resolver)(host, _port(parts))
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for address in addresses:
            self.check_address(address, host)
        address = addresses[0]
        literal = f"[{address}]" if ":" in address else address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        pinned = parts._replace(netloc=netloc).geturl()
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}  # TLS still checks the name
        return pinned, {"Host": host_header}, extensions


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--callback-allowed-networks", default=os.environ.get(ALLOWED_NETWORKS_ENV, ""),
                        help="networks callbacks may reach although they are loopback, private, link-local or "
                             f"a metadata server, comma-separated CIDRs ({ALLOWED_NETWORKS_ENV}); default none")


def _split(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"a callback URL may be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or c == "\x7f" for c in url):
        raise CallbackRefused("a callback URL must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CallbackRefused(f"{url[:100]!r} is not a URL ({exc})") from None
    if parts.scheme.lower() not in SCHEMES:
        raise CallbackRefused(f"{url[:100]!r} is not an http or https URL; callbacks are POSTed over http(s) only")
    if not parts.hostname:
        raise CallbackRefused(f"{url[:100]!r} names no host")
    if port == 0:
        raise CallbackRefused(f"{url[:100]!r}: port 0 is not a port")
    return parts


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _refused_kind(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (cloud metadata)"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None
