"""Worker hosts for real (deploy/worker_hosts.py): namespaces, the fleet LAN, the way in, podman inside,
and nothing left behind once a host is destroyed or swept. No stack: the test process holds the LAN."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.fleet_lan import BRIDGE, GATEWAY, FleetLan, Holder, link_exists, process_start_time
from deploy.worker_hosts import (
    HostRecord,
    HostRegistry,
    WorkerGiven,
    WorkerHosts,
    code_paths,
    machine_image_store,
    sweep_stale,
)

pytestmark = pytest.mark.podman


@pytest.fixture(scope="module")
def lan(podman_socket: Path) -> Iterator[FleetLan]:
    lan = FleetLan()
    holder = Holder.process()
    lan.acquire(holder)
    try:
        yield lan
    finally:
        lan.release(holder)


def new_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="squall-hosts-"))
    (home / "stack.json").write_text("{}")  # a stack that is up, as far as the sweep can tell
    return home


def assert_gone(record: HostRecord) -> None:
    assert not Path("/run/netns", record.netns).exists() and not link_exists(record.netns)
    assert record.init_pid is None or process_start_time(record.init_pid) != record.init_start
    assert not Path(record.disk).exists()
    assert HostRegistry().load(record.netns) is None


@pytest.fixture
def host(lan: FleetLan) -> Iterator[tuple[WorkerHosts, HostRecord]]:
    home = new_home()
    hosts = WorkerHosts(home)
    record = hosts.create("w1", WorkerGiven(code=code_paths(), image_store=machine_image_store()))
    try:
        yield hosts, record
    finally:
        hosts.destroy("w1")
        assert_gone(record)
        shutil.rmtree(home, ignore_errors=True)


def inside(hosts: WorkerHosts, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*hosts.enter_command("w1"), *argv], capture_output=True, text=True, timeout=timeout)


def test_a_host_has_its_own_name_address_processes_and_files(host: tuple[WorkerHosts, HostRecord]) -> None:
    hosts, record = host
    assert link_exists(BRIDGE) and link_exists(record.netns)
    assert inside(hosts, "hostname").stdout.strip() == "w1"
    route = inside(hosts, "ip", "-4", "-o", "route", "show", "default").stdout
    assert f"via {GATEWAY} dev eth0" in route
    assert f"{record.address}/25" in inside(hosts, "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert "inet6" not in inside(hosts, "ip", "-o", "addr", "show", "eth0").stdout  # no address beyond the /25
    repo = Path(__file__).resolve().parents[3]
    probe = f"""
import json, os
print(json.dumps({{"home": os.path.exists({str(hosts.home)!r}), "repo": sorted(os.listdir({str(repo)!r})),
                   "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                   "init": open("/proc/1/cmdline", "rb").read().split(b"\\0")[2:4],
                   "root": sorted(os.listdir("/"))}}, default=lambda b: b.decode()))
"""
    seen = json.loads(inside(hosts, "/usr/bin/python3", "-c", probe).stdout)
    assert seen["home"] is False
    assert set(seen["repo"]) <= {".venv", "deploy", "events", "projections", "schemas", "services", "worker"}
    assert seen["init"] == ["deploy.host_init", "init"] and len(seen["pids"]) <= 4  # init, probe (+ its shell)
    # the system's directories, and the top directory of each path it was given (the code, the image store):
    # where the checkout lives differs by machine (/work here, elsewhere in CI), so it is derived, not listed
    given = {Path(p).parts[1] for p in (*code_paths(), machine_image_store())}
    assert set(seen["root"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "root", "run",
                                 "sbin", "sys", "tmp", "usr", "var"} | given, given
    # its device nodes have the machine's modes, whatever the umask (a 0644 /dev/null broke jobs)
    modes = inside(hosts, "stat", "-c", "%n %a", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/loop0").stdout
    assert modes.split("\n")[:4] == ["/dev/null 666", "/dev/zero 666", "/dev/urandom 666", "/dev/loop0 660"], modes


def test_the_way_in_behaves_as_the_command_it_runs(host: tuple[WorkerHosts, HostRecord]) -> None:
    hosts, _ = host
    assert inside(hosts, "sh", "-c", "exit 7").returncode == 7
    env = inside(hosts, "env").stdout.splitlines()
    assert sorted(line.split("=", 1)[0] for line in env) == ["HOME", "LANG", "PATH", "PYTHONUNBUFFERED"]
    # SIGTERM reaches the command (which drains and exits as it likes)
    shim = subprocess.Popen([*hosts.enter_command("w1"), "sh", "-c", 'trap "exit 42" TERM; sleep 60 & wait'])
    time.sleep(1.0)
    shim.send_signal(signal.SIGTERM)
    assert shim.wait(20) == 42
    # the command dies with its shadow: killing the one the provider tracks kills the agent
    shim = subprocess.Popen([*hosts.enter_command("w1"), "sleep", "300"])
    deadline = time.monotonic() + 10
    children: list[str] = []
    while not children and time.monotonic() < deadline:
        children = Path(f"/proc/{shim.pid}/task/{shim.pid}/children").read_text().split()
        time.sleep(0.05)
    assert len(children) == 1
    shim.kill()
    shim.wait(10)
    deadline = time.monotonic() + 10
    while process_start_time(int(children[0])) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_start_time(int(children[0])) is None


def test_podman_in_a_host_has_its_own_containers_and_a_killed_host_leaves_none(lan: FleetLan) -> None:
    home = new_home()
    hosts = WorkerHosts(home)
    record = hosts.create("w1", WorkerGiven(code=code_paths(), image_store=machine_image_store()))
    try:
        name = f"squall-w1-hosttest-{os.getpid()}"
        run = inside(hosts, "podman", "run", "-d", "--name", name, "--network", "none", "localhost/busybox:latest",
                     "sleep", "300")
        assert run.returncode == 0, run.stderr
        cid = run.stdout.strip()
        assert inside(hosts, "podman", "inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
        graph = inside(hosts, "podman", "info", "--format", "{{.Store.GraphRoot}}").stdout.strip()
        assert graph == "/var/lib/containers/storage"  # its own disk; the machine's images come read-only
        machine = subprocess.run(["podman", "ps", "-a", "--filter", f"name={name}", "--format", "{{.ID}}"],
                                 capture_output=True, text=True)
        assert machine.stdout.strip() == ""  # the machine's podman never heard of it
        conmons = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).count(cid) and "conmon" in _cmdline(p)]
        assert conmons
    finally:
        hosts.destroy("w1")  # SIGKILL of its init: the power goes
    assert_gone(record)
    for hierarchy in Path("/sys/fs/cgroup").glob("*/libpod_parent"):
        assert not (hierarchy / f"libpod-{cid}").exists(), hierarchy
    assert not any(cid in _cmdline(p) for p in os.listdir("/proc") if p.isdigit())
    shutil.rmtree(home, ignore_errors=True)


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_the_sweep_removes_hosts_of_vanished_stacks_and_unclaimed_namespaces(lan: FleetLan) -> None:
    live_home, gone_home = new_home(), new_home()
    live, gone = WorkerHosts(live_home), WorkerHosts(gone_home)
    given = WorkerGiven(code=code_paths())
    kept = live.create("w1", given)
    lost = gone.create("w1", given)
    orphan_ns, orphan_link = "squall-w-test01", "squall-w-test02"
    subprocess.run(["ip", "netns", "add", orphan_ns], check=True)
    subprocess.run(["ip", "link", "add", orphan_link, "type", "veth", "peer", "name", "sqt-peer02"], check=True)
    try:
        shutil.rmtree(gone_home)  # its stack is gone (e.g. a test run killed before `squall down`)
        removed = sweep_stale()
        assert {lost.netns, orphan_ns, orphan_link} <= set(removed) and kept.netns not in removed
        assert_gone(lost)
        assert not Path("/run/netns", orphan_ns).exists() and not link_exists(orphan_link)
        assert not link_exists("sqt-peer02")
        assert live.alive("w1")
    finally:
        live.destroy("w1")
        subprocess.run(["ip", "netns", "del", orphan_ns], capture_output=True)
        subprocess.run(["ip", "link", "del", orphan_link], capture_output=True)
        shutil.rmtree(live_home, ignore_errors=True)
    assert_gone(kept)
    # destroying a host that is already gone (the provider deleting a lost instance) leaves nothing
    assert live.destroy("w1") is False and not (HostRegistry().dir / f"{kept.netns}.lock").exists()


def test_a_lost_namespace_is_a_lost_host(host: tuple[WorkerHosts, HostRecord]) -> None:
    hosts, record = host
    assert hosts.alive("w1")
    subprocess.run(["ip", "netns", "del", record.netns], check=True)
    assert not hosts.alive("w1")  # its init runs on, but the host is off the network for good


def test_the_machine_answers_the_lan_only_on_published_ports(host: tuple[WorkerHosts, HostRecord],
                                                             lan: FleetLan) -> None:
    hosts, _ = host
    import socket

    published, unpublished = socket.socket(), socket.socket()
    for s in (published, unpublished):
        s.bind((GATEWAY, 0))
        s.listen(4)
    holder = Holder.process([published.getsockname()[1]], pid=os.getpid())
    lan.acquire(holder)  # (the module's holder, now with a port)
    probe = f"""
import errno, json, socket, sys
out = []
for port in map(int, sys.argv[1:]):
    try:
        socket.create_connection(("{GATEWAY}", port), timeout=5).close()
        out.append("connected")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e)))
print(json.dumps(out))
"""
    try:
        result = inside(hosts, "/usr/bin/python3", "-c", probe, str(published.getsockname()[1]),
                        str(unpublished.getsockname()[1]))
    finally:
        published.close()
        unpublished.close()
        lan.acquire(Holder.process(pid=os.getpid()))
    assert json.loads(result.stdout) == ["connected", "EHOSTUNREACH"], result.stderr
