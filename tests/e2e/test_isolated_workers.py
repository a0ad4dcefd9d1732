"""Isolated workers, end to end: each local worker a host of its own (deploy/worker_hosts.py).

Two workers on a stack of the session's secured broker: each has its own network namespace on the
fleet LAN (listed by `squall status --json`), sees its own files only, reaches the control plane on
the two ports the machine publishes to the LAN and nothing else, and its jobs reach none of it.
When the stack goes down, nothing of the hosts is left on the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from e2e_harness import StackClient, isolation_unavailable, job, start_secured_stack, stop_stack
from typer.testing import CliRunner

import services.cli.stack  # noqa: F401  (registers `squall status` on the app)
from deploy import stack
from deploy.fleet_lan import GATEWAY, SUBNET, FleetLan, link_exists, process_start_time
from deploy.worker_hosts import HostRegistry, WorkerHosts
from services.cli import app
from tests.conftest import SecureKafka
from worker.job_networks import JobNetworks

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman]

PYTHON = "localhost/debian-python3:bookworm"
OUTSIDE = "192.0.2.1"  # TEST-NET-1 (RFC 5737): routed nowhere, so a probe of it never reaches anyone
PROBE = """
import errno, json, socket, sys
out = {}
for name, host, port in json.loads(sys.argv[1]):
    try:
        with socket.create_connection((host, port), timeout=5):
            out[name] = "connected"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
print(json.dumps(out))
"""


def workers_up(client: StackClient, n: int) -> list[dict]:
    """The stack's workers once n of them run in hosts and answer on their live-log endpoints."""
    def ready() -> list[dict] | None:
        workers = [w for w in stack.status(client.home)["workers"] if w["pid"] and w["netns"]]  # type: ignore[index]
        ports = [client.home / "instances" / w["name"] / "agent-port" for w in workers]
        return workers if len(workers) >= n and all(p.exists() for p in ports) else None
    return client.wait_for(ready, timeout_s=240, what=f"{n} isolated workers")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def isolated(secure_kafka: SecureKafka, pg_url: str, podman_ready: None) -> Iterator[StackClient]:
    reason = isolation_unavailable()
    if reason is not None:
        pytest.skip(reason)
    client = start_secured_stack(secure_kafka, pg_url, workers=2, worker_cores=2, isolated_workers=True)
    records = []
    try:
        workers_up(client, 2)
        records = WorkerHosts(client.home).ours()
        yield client
    finally:
        stop_stack(client)
    # nothing of the hosts is left: records, namespaces, veths, processes (init, agent, podman service)
    assert [r for r in HostRegistry().all() if r.home == str(client.home)] == []
    for r in records:
        assert not Path("/run/netns", r.netns).exists() and not link_exists(r.netns)
        assert r.init_pid is None or process_start_time(r.init_pid) != r.init_start


def inside(client: StackClient, instance: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WorkerHosts(client.home).enter_command(instance), *argv], capture_output=True,
                          text=True, timeout=60)


def test_status_lists_each_worker_with_its_own_network_namespace(isolated: StackClient) -> None:
    result = CliRunner().invoke(app, ["status", "--home", str(isolated.home), "--json"])
    workers = json.loads(result.output)["workers"]
    assert len(workers) >= 2 and all({"name", "pid", "netns", "address"} <= set(w) for w in workers)
    assert len({w["netns"] for w in workers}) == len({w["address"] for w in workers}) == len(workers)
    ours = os.readlink("/proc/self/ns/net")
    for w in workers:
        assert ipaddress.ip_address(w["address"]) in ipaddress.ip_network(SUBNET) and w["address"] != GATEWAY
        assert Path("/run/netns", w["netns"]).exists() and link_exists(w["netns"])
        for ns in ("net", "mnt", "uts"):  # the worker's process is in the host's namespaces, not ours
            assert os.readlink(f"/proc/{w['pid']}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        assert os.readlink(f"/proc/{w['pid']}/ns/net") == os.readlink(f"/proc/{w['host_init_pid']}/ns/net") != ours
        assert inside(isolated, w["name"], "hostname").stdout.strip() == w["name"]
        addresses = inside(isolated, w["name"], "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert f"{w['address']}/25" in addresses


def test_a_worker_host_sees_its_own_files_and_processes_only(isolated: StackClient, secure_kafka: SecureKafka) -> None:
    name = WorkerHosts(isolated.home).ours()[0].instance
    check = f"""
import json, os
procs = {{}}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            procs[p] = open(f"/proc/{{p}}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
        except OSError:
            pass
def writable(path):
    try:
        open(os.path.join(path, ".probe"), "w").close()
        return True
    except OSError:
        return False
print(json.dumps({{
    "home": os.path.exists({str(isolated.home)!r}), "broker_data": os.path.exists({str(secure_kafka.credentials)!r}),
    "state": sorted(os.listdir("/var/lib/squall/instances/{name}")), "credentials": sorted(os.listdir("/etc/squall/kafka")),
    "instances": sorted(os.listdir("/var/lib/squall/instances")), "procs": procs,
    "image_store_writable": writable("/var/lib/containers/machine-images"), "tmp_writable": writable("/tmp"),
}}))
"""
    result = inside(isolated, name, "/usr/bin/python3", "-c", check)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["home"] is False and seen["broker_data"] is False  # $SQUALL_HOME and the broker's secrets
    assert seen["instances"] == [name]  # its own state, not the other worker's
    assert "journal.jsonl" in seen["state"] or "spool" in seen["state"], seen["state"]
    assert seen["credentials"] == ["ca.crt", "worker.json"]  # the worker principal's, nothing else
    assert seen["image_store_writable"] is False and seen["tmp_writable"] is True
    assert "deploy.host_init init" in seen["procs"]["1"]  # its own init is PID 1
    everything = " ".join(seen["procs"].values())
    for service in ("services.front", "services.scheduler", "projections.resolver", "kafka.Kafka", "postgres"):
        assert service not in everything, f"the worker host sees {service}"
    assert "-m worker" in everything and "podman system service" in everything  # its agent and its podman


def test_a_worker_reaches_the_control_plane_on_its_published_ports_only(isolated: StackClient) -> None:
    s = isolated.state
    kafka_host, kafka_port = s.worker_bootstrap.rsplit(":", 1)
    store = urlparse(s.storage_endpoint or "")
    unpublished = socket.socket()  # something listening on the gateway that the stack did not publish
    unpublished.bind((GATEWAY, 0))
    unpublished.listen(4)
    stop = threading.Event()
    threading.Thread(target=lambda: [_accept_until(unpublished, stop)], daemon=True).start()
    refused_before = FleetLan().refused_count()
    targets = [("kafka", kafka_host, int(kafka_port)), ("store", store.hostname, store.port),
               ("front_on_gateway", GATEWAY, s.port), ("front_on_loopback", "127.0.0.1", s.port),
               ("unpublished_on_gateway", GATEWAY, unpublished.getsockname()[1]),
               ("beyond_the_machine", OUTSIDE, 80)]
    try:
        name = WorkerHosts(isolated.home).ours()[0].instance
        result = inside(isolated, name, "/usr/bin/python3", "-c", PROBE, json.dumps(targets))
    finally:
        stop.set()
        unpublished.close()
    assert result.returncode == 0, result.stderr
    reached = json.loads(result.stdout)
    assert reached["kafka"] == reached["store"] == "connected"
    # the machine's firewall answers everything else on the gateway at once; loopback is the host's own
    assert reached["front_on_gateway"] == reached["unpublished_on_gateway"] == "EHOSTUNREACH", reached
    assert reached["front_on_loopback"] == "ECONNREFUSED", reached
    # nothing is routed beyond the LAN: refused on the machine, never NATed out (that would time out)
    assert reached["beyond_the_machine"] == "EHOSTUNREACH", reached
    assert FleetLan().refused_count() >= refused_before + 3


def _accept_until(server: socket.socket, stop: threading.Event) -> None:
    server.settimeout(0.2)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
            conn.close()
        except OSError:
            continue


@pytest.mark.parametrize("network", ["public", "private"])
def test_jobs_on_an_isolated_worker_reach_none_of_the_control_plane(isolated: StackClient, network: str) -> None:
    s = isolated.state
    kafka_host, kafka_port = s.worker_bootstrap.rsplit(":", 1)
    store = urlparse(s.storage_endpoint or "")
    job_gateway = str(next(ipaddress.ip_network(JobNetworks().by_kind(network).subnet).hosts()))
    targets = [("kafka", kafka_host, int(kafka_port)), ("store", store.hostname, store.port),
               ("gateway_any_port", GATEWAY, 22), ("metadata", "169.254.169.254", 80),
               ("worker_via_job_gateway", job_gateway, 22),  # whichever worker host runs the job
               ("beyond_the_machine", OUTSIDE, 80)]
    for w in WorkerHosts(isolated.home).ours():  # the workers' live-log endpoints
        port = int((isolated.home / "instances" / w.instance / "agent-port").read_text())
        targets.append((f"agent {w.instance}", w.address, port))
    batch_id = isolated.submit([job(1, ["python3", "-c", PROBE, json.dumps(targets)], image=PYTHON,
                                    network=network)])
    assert isolated.wait(batch_id)["state"] == "success", isolated.jobs(batch_id)
    reached = json.loads(isolated.http.get(f"/batches/{batch_id}/jobs/1/log/main").raise_for_status().text)
    assert set(reached) == {t[0] for t in targets}
    # rejected at once by a firewall (admin-prohibited); a private network has no route beyond itself
    refusals = {"EHOSTUNREACH"} if network == "public" else {"EHOSTUNREACH", "ENETUNREACH"}
    assert set(reached.values()) <= refusals, reached
    assert reached["worker_via_job_gateway"] == "EHOSTUNREACH"
    attempts = isolated.http.get(f"/batches/{batch_id}/jobs/1/attempts").raise_for_status().json()
    assert len(attempts) == 1, attempts  # ran at once: no attempt lost to the host (a retry hides such errors)
    instance = attempts[0]["instance_name"]
    counters = inside(isolated, instance, "nft", "-j", "list", "counters", "table", "inet", "squall_jobs")
    rejected = {c["counter"]["name"]: c["counter"]["packets"] for c in json.loads(counters.stdout)["nftables"]
                if "counter" in c}
    # the worker host's own job firewall turned them away (not the machine's, not a closed port)
    assert rejected["host"] >= 1, rejected
    if network == "public":
        assert rejected["metadata"] >= 1 and rejected["control_plane"] >= 3, rejected


def test_a_restarted_agent_rejoins_its_host(isolated: StackClient) -> None:
    """The host outlives its agent, as a VM outlives a crashed service: the provider restarts the
    agent in the same namespaces, where its podman service still runs."""
    w = workers_up(isolated, 2)[0]
    record = WorkerHosts(isolated.home).get(w["name"])
    assert record is not None
    podman_before = inside(isolated, w["name"], "sh", "-c", "cat /run/squall/service.pid").stdout.strip()
    os.kill(w["pid"], 9)
    host_net = os.readlink(f"/proc/{record.init_pid}/ns/net")

    def back() -> dict | None:  # restarted, and through the way in (a fresh process starts outside)
        now = {x["name"]: x for x in stack.status(isolated.home)["workers"]}.get(w["name"])  # type: ignore[index]
        if not now or not now["pid"] or now["pid"] == w["pid"]:
            return None
        try:
            return now if os.readlink(f"/proc/{now['pid']}/ns/net") == host_net else None
        except OSError:
            return None
    now = isolated.wait_for(back, timeout_s=120, what="the agent restarted in its host")
    assert now["netns"] == w["netns"] and now["host_init_pid"] == record.init_pid
    batch_id = isolated.submit([job(1, ["echo", "after the restart"])])
    assert isolated.wait(batch_id)["state"] == "success"
    assert inside(isolated, w["name"], "sh", "-c", "cat /run/squall/service.pid").stdout.strip() == podman_before
