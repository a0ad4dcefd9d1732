"""Jobs cannot reach the control plane: real jobs on the public and private networks try the host
(a port bound to 0.0.0.0, through the gateways and the host's own address), 169.254.169.254 and a
listener standing for the broker, and fail at once; the same jobs reach what they may (a peer on
their network; an allowed port beyond the host, through NAT), so the test cannot pass vacuously.

"Beyond the host" is a network namespace this test creates, joined by a veth whose two /32
addresses are the top of the private job subnet (10.213.7.253 host side, .254 inside): off the
public subnet, so public jobs reach it routed and NATed like any internet address.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.podman_support import PYTHON
from worker.job_firewall import Endpoint, JobFirewall
from worker.job_networks import JobNetworks
from worker.podman_runtime import PodmanRuntime
from worker.runtime import ContainerSpec

pytestmark = pytest.mark.podman

HOST_SIDE, PEER = "10.213.7.253", "10.213.7.254"
BROKER_PORT, ALLOWED_PORT, PEER_PORT = 9092, 8080, 8081

PROBE = """
import errno, json, socket, sys
out = {}
for name, host, port in json.loads(sys.argv[1]):
    try:
        with socket.create_connection((host, port), timeout=4) as s:
            out[name] = "ok " + s.recv(64).decode().strip()
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
print(json.dumps(out))
"""

SERVE = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(f"hello from {port}\\n".encode()); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A service on the host bound to 0.0.0.0, as Kafka, the front end or a worker endpoint could be."""
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conn.sendall(b"host\n")
            conn.close()
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


@pytest.fixture
def outside_peer() -> Iterator[str]:
    """A network namespace beyond the host with listeners on BROKER_PORT and ALLOWED_PORT."""
    tag = uuid.uuid4().hex[:6]
    ns, host_if, ns_if = f"sqjt-{tag}", f"sqh{tag}", f"sqn{tag}"
    server = None
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{HOST_SIDE}/32", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "route", "add", f"{PEER}/32", "dev", host_if)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", f"{PEER}/32", "dev", ns_if)
        sh("ip", "-n", ns, "link", "set", ns_if, "up")
        sh("ip", "-n", ns, "route", "add", f"{HOST_SIDE}/32", "dev", ns_if)
        server = subprocess.Popen(["ip", "netns", "exec", ns, "python3", "-c", SERVE, str(BROKER_PORT),
                                   str(ALLOWED_PORT)], stdout=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield PEER
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)  # takes its peer along
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def host_address() -> str:
    """The host's own address on its main interface (not loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the route's source
        return str(s.getsockname()[0])


async def run_in(rt: PodmanRuntime, network: str, command: tuple[str, ...]) -> tuple[str, str]:
    """Start a container on `network`; returns (id, its address there)."""
    cid = await rt.create(ContainerSpec(name=f"squall-fwtest-{uuid.uuid4().hex[:8]}", image=PYTHON,
                                        command=command, network=network, labels={"squall.test": "firewall"}))
    await rt.start(cid)
    inspect = await asyncio.to_thread(
        subprocess.run, ["podman", "inspect", cid, "--format", "{{json .NetworkSettings.Networks}}"],
        capture_output=True, text=True, check=True)
    address = next(iter(json.loads(inspect.stdout).values()))["IPAddress"]
    return cid, address


async def probe(rt: PodmanRuntime, network: str, targets: list[tuple[str, str, int]]) -> dict[str, str]:
    cid = await rt.create(ContainerSpec(name=f"squall-fwtest-{uuid.uuid4().hex[:8]}", image=PYTHON,
                                        command=("python3", "-c", PROBE, json.dumps(targets)), network=network,
                                        labels={"squall.test": "firewall"}))
    out: list[bytes] = []
    try:
        await rt.start(cid)
        logs = asyncio.create_task(rt.follow_logs(cid, out.append))
        assert (await rt.wait(cid)).exit_code == 0
        await asyncio.wait_for(logs, 10)
    finally:
        await rt.remove(cid)
    return json.loads(b"".join(out).decode().strip().splitlines()[-1])


@pytest.fixture
async def firewalled(podman_socket: Path, job_networks: JobNetworks, outside_peer: str):
    """A runtime whose firewall also blocks the broker stand-in beyond the host (PEER:BROKER_PORT)."""
    networks = JobNetworks(job_networks.public, job_networks.private, blocked=(Endpoint(PEER, BROKER_PORT),))
    rt = PodmanRuntime(podman_socket, networks=networks)
    firewall = JobFirewall(networks.firewall_policy())
    await rt.prepare_job_networks(firewall)
    try:
        yield rt, firewall
    finally:
        await rt.release_job_networks()
        await rt.close()


async def test_public_jobs_reach_the_internet_and_peers_but_not_the_control_plane(firewalled, host_listener) -> None:
    rt, firewall = firewalled
    nets = rt.networks
    peer_id, peer_ip = await run_in(rt, "public", ("python3", "-c", SERVE, str(PEER_PORT)))
    # a private job too, so that network's bridge (and its gateway on the host) exists
    private_id, _ = await run_in(rt, "private", ("sleep", "60"))
    before = firewall.counters()
    try:
        got = await probe(rt, "public", [
            ["public_gateway", nets.public.gateway, host_listener],
            ["private_gateway", nets.private.gateway, host_listener],
            ["host_address", host_address(), host_listener],
            ["metadata", "169.254.169.254", 80],
            ["broker", PEER, BROKER_PORT],
            ["outside_allowed", PEER, ALLOWED_PORT],
            ["peer_on_network", peer_ip, PEER_PORT]])
    finally:
        await rt.remove(peer_id)
        await rt.remove(private_id)
    after = firewall.counters()
    assert got == {"public_gateway": "EHOSTUNREACH", "private_gateway": "EHOSTUNREACH",
                   "host_address": "EHOSTUNREACH", "metadata": "EHOSTUNREACH", "broker": "EHOSTUNREACH",
                   "outside_allowed": f"ok hello from {ALLOWED_PORT}", "peer_on_network": f"ok hello from {PEER_PORT}"}
    # each refusal is the firewall's own (its counters moved), not a missing route
    for counter in ("host", "metadata", "control_plane"):
        assert after[counter] > before.get(counter, 0), counter
    # the host itself still reaches the listener the jobs could not
    with socket.create_connection((host_address(), host_listener), timeout=2) as s:
        assert s.recv(16) == b"host\n"


async def test_private_jobs_reach_only_their_own_network(firewalled, host_listener) -> None:
    rt, _ = firewalled
    nets = rt.networks
    peer_id, peer_ip = await run_in(rt, "private", ("python3", "-c", SERVE, str(PEER_PORT)))
    try:
        got = await probe(rt, "private", [
            ["private_gateway", nets.private.gateway, host_listener],
            ["host_address", host_address(), host_listener],
            ["metadata", "169.254.169.254", 80],
            # another of the host's networks: off this /26, so only a route could reach it (PEER lies inside
            # the private /26, where a connect waits out ARP and, on a loaded machine, the probe's timeout)
            ["public_network", nets.public.gateway, host_listener],
            ["peer_on_network", peer_ip, PEER_PORT]])
    finally:
        await rt.remove(peer_id)
    assert got["private_gateway"] == "EHOSTUNREACH", got
    # no egress: no route at all (netavark's internal network), and the no_egress rule behind it
    assert all(got[k] == "ENETUNREACH" for k in ("host_address", "metadata", "public_network")), got
    assert got["peer_on_network"] == f"ok hello from {PEER_PORT}"


async def test_networked_jobs_are_refused_until_the_firewall_is_installed(podman_socket: Path) -> None:
    from worker.runtime import ContainerRuntimeError
    rt = PodmanRuntime(podman_socket)
    try:
        with pytest.raises(ContainerRuntimeError, match="not firewalled"):
            await rt.create(ContainerSpec(name=f"squall-fwtest-{uuid.uuid4().hex[:8]}", image=PYTHON,
                                          command=("true",), network="public"))
    finally:
        await rt.close()
