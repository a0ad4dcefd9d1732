"""Isolated workers' pure parts: the fleet LAN's rules and holders, a worker host's root, its names,
what it is given, and the local provider's command for it (the namespaces themselves:
tests/integration/worker/test_worker_hosts.py; a stack of them: tests/e2e/test_isolated_workers.py)."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
from pathlib import Path

import pytest

from deploy import isolation
from deploy.fleet_lan import BRIDGE, GATEWAY, SUBNET, Holder, host_addresses, render_rules
from deploy.host_root import DISK_DIRS, Bind, HostRoot, plan_mounts, prepare_disk
from deploy.local_fleet import metrics_url
from deploy.stack import StackState
from deploy.worker_hosts import (
    INSIDE_CREDENTIALS,
    PREFIX,
    _install_credentials,
    _release_userns_leases,
    code_paths,
    host_name,
)
from events.process.config import ServiceConfig
from services.providers.base import InstanceSpec
from services.providers.local import ISOLATED_METRICS_PORT, LocalProvider
from worker.job_firewall import Endpoint, FirewallPolicy, render, resolve_endpoints


def test_the_lan_is_the_lower_half_of_the_subnet_and_leases_never_the_gateway() -> None:
    net = ipaddress.ip_network(SUBNET)
    assert net == ipaddress.ip_network("10.213.7.0/25")  # the upper half is the job networks'
    addresses = host_addresses()
    assert len(addresses) == 125 and GATEWAY not in addresses
    assert all(ipaddress.ip_address(a) in net for a in addresses)
    assert addresses[0] == "10.213.7.2"


def test_the_lan_rules_open_only_the_published_ports_and_route_nothing() -> None:
    rules = render_rules([9093, 4443, 9093])
    assert "elements = { 4443, 9093 };" in rules
    assert f'iifname "{BRIDGE}" ip daddr {GATEWAY} tcp dport @gateway_ports accept' in rules
    # established first (the front end asks workers), the catch-all rejection last
    lines = [line.strip() for line in rules.splitlines()]
    start = lines.index("chain input {")
    assert lines[start + 2].endswith("ct state established,related accept")
    assert lines[start + 4] == f'iifname "{BRIDGE}" counter name refused reject with icmpx admin-prohibited'
    # nothing is routed from the LAN or into it: the hosts reach no network beyond it, no NAT out
    forward = lines[lines.index("chain forward {"):]
    assert forward[2] == f'iifname "{BRIDGE}" counter name refused reject with icmpx admin-prohibited'
    assert forward[3] == f'oifname "{BRIDGE}" counter name refused reject with icmpx admin-prohibited'
    assert "masquerade" not in rules and "nat" not in rules
    assert rules.startswith("table inet squall_fleet\ndelete table inet squall_fleet\n")  # atomic replace
    assert "elements" not in render_rules([]).split("gateway_ports", 1)[1].split("}", 1)[0]
    with pytest.raises(ValueError):
        render_rules([0])


def test_holders_round_trip_and_know_when_they_are_gone(tmp_path: Path) -> None:
    me = Holder.process([9093])
    assert Holder.from_json(me.to_json()) == me and me.alive()
    assert not Holder("pid-x", pid=os.getpid(), start="0").alive()  # same pid, another process
    home = tmp_path / "stack"
    home.mkdir()
    stack_holder = Holder.stack(home, [1, 2])
    assert Holder.from_json(stack_holder.to_json()) == stack_holder
    assert stack_holder.alive()  # starting: no stack.json yet, within the grace period
    old = Holder(stack_holder.key, home=str(home), since=time.time() - 3600)
    assert not old.alive()
    (home / "stack.json").write_text("{}")
    assert not old.alive()  # a stack.json its killed stack left behind holds nothing
    (home / "run").mkdir()
    (home / "run" / "front.pid").write_text(str(os.getpid()))
    assert old.alive()  # one of its processes runs: the stack holds the LAN
    (home / "run" / "front.pid").write_text("999999999")
    assert not old.alive()
    assert Holder.stack(home).key == stack_holder.key  # one holder per stack, whatever its ports


def test_host_names_fit_an_interface_name_and_are_stable(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    name = host_name(a, "squall-standard-abcdefgh")
    assert name.startswith(PREFIX) and len(name) <= 15
    assert name == host_name(a, "squall-standard-abcdefgh")
    assert name != host_name(b, "squall-standard-abcdefgh") != host_name(a, "other")


def test_a_host_root_holds_its_disk_the_system_read_only_and_only_what_it_is_given(tmp_path: Path) -> None:
    disk = str(tmp_path / "disk")
    given = (Bind("/work/repo/worker", "/work/repo/worker"), Bind("/srv/state/w1", "/var/lib/squall/instances/w1",
                                                                  read_only=False),
             Bind("/var/lib/containers/storage", "/var/lib/containers/machine-images"))
    root = HostRoot(disk=disk, hostname="w1", binds=given)
    assert HostRoot.from_json(root.to_json()) == root
    steps = plan_mounts(root, {"bin": "usr/bin", "usr": None, "lib64": None})
    by_target = {s.target: s for s in steps}
    assert by_target["/bin"].kind == "symlink" and by_target["/bin"].source == "usr/bin"
    assert by_target["/usr"].kind == "bind" and by_target["/usr"].read_only
    for d in DISK_DIRS:
        assert by_target[f"/{d}"].source == os.path.join(disk, d) and not by_target[f"/{d}"].read_only
    assert by_target["/proc"].kind == "proc" and by_target["/run"].kind == "tmpfs"
    assert by_target["/sys/fs/cgroup"].recursive
    # nothing of the machine besides the system directories, the cgroup tree and what was given
    machine_sources = {s.source for s in steps if s.kind == "bind" and not s.source.startswith(disk)}
    assert machine_sources == {"/usr", "/lib64", "/sys/fs/cgroup", *(b.source for b in given)}
    assert by_target["/var/lib/containers/machine-images"].read_only
    targets = [s.target for s in steps]
    assert targets.index("/var") < targets.index("/var/lib/squall/instances/w1")  # parents first


def test_a_new_disk_copies_etc_without_the_machines_podman_networks(tmp_path: Path) -> None:
    etc = tmp_path / "machine-etc"
    (etc / "containers" / "networks").mkdir(parents=True)
    (etc / "containers" / "networks" / "someones.json").write_text("{}")
    (etc / "containers" / "containers.conf").write_text("[engine]\n")
    (etc / "mtab").symlink_to("/proc/self/mounts")
    disk = tmp_path / "disk"
    prepare_disk(disk, etc)
    assert (disk / "etc" / "containers" / "containers.conf").read_text() == "[engine]\n"
    assert list((disk / "etc" / "containers" / "networks").iterdir()) == []
    assert os.readlink(disk / "etc" / "mtab") == "/proc/self/mounts"
    assert os.readlink(disk / "var" / "run") == "/run"
    assert oct((disk / "tmp").stat().st_mode & 0o7777) == "0o1777"
    (disk / "etc" / "marker").write_text("kept")
    prepare_disk(disk, etc)  # a restart keeps the host's own disk
    assert (disk / "etc" / "marker").read_text() == "kept"


def test_the_worker_gets_its_own_credentials_pointing_at_its_own_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("CERT")
    source = tmp_path / "worker.json"
    source.write_text(json.dumps({"security_protocol": "SASL_SSL", "username": "worker", "password": "pw",
                                  "sasl_mechanism": "SCRAM-SHA-512", "ca_file": str(ca)}))
    target = tmp_path / "disk" / "etc" / "squall" / "kafka"
    _install_credentials(source, target)
    installed = json.loads((target / "worker.json").read_text())
    assert installed["ca_file"] == f"{INSIDE_CREDENTIALS}/ca.crt" and installed["password"] == "pw"
    assert (target / "ca.crt").read_text() == "CERT"
    assert (target / "worker.json").stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in target.iterdir()) == ["ca.crt", "worker.json"]


def test_a_dead_hosts_user_namespace_leases_are_released(tmp_path: Path) -> None:
    for d in ("slots", "owners"):
        (tmp_path / d).mkdir()
    for slot, owner in ((0, "squall-w1-5-1-0-main"), (1, "squall-w10-5-2-0-main"), (2, "squall-w1-jvm-9-1")):
        (tmp_path / "slots" / str(slot)).write_text(owner)
        (tmp_path / "owners" / owner).write_text(str(slot))
    assert _release_userns_leases("squall-w1-", tmp_path) == 2
    assert [p.name for p in (tmp_path / "slots").iterdir()] == ["1"]
    assert [p.name for p in (tmp_path / "owners").iterdir()] == ["squall-w10-5-2-0-main"]


def test_code_paths_are_the_installation_not_the_repository() -> None:
    paths = code_paths()
    assert os.path.realpath(sys.prefix) in paths and all(os.path.isdir(p) for p in paths)
    assert not any(p != q and p.startswith(q + "/") for p in paths for q in paths)  # no nested binds
    repo = Path(__file__).resolve().parents[3]
    assert str(repo) not in paths and str(repo / "tests") not in paths  # the packages, not the tree


def test_the_job_firewall_takes_a_network_for_the_fleet_lan() -> None:
    assert resolve_endpoints(["10.213.7.0/25", "10.213.7.1:9093"]) == [Endpoint("10.213.7.0/25"),
                                                                       Endpoint("10.213.7.1", 9093)]
    with pytest.raises(ValueError, match="every port"):
        resolve_endpoints(["10.213.7.0/25:80"])
    rules = render(FirewallPolicy(("sqj-pub0",), blocked=(Endpoint("10.213.7.0/25"),)))
    assert "set blocked_v4 { type ipv4_addr; flags interval; elements = { 10.213.7.0/25 }; }" in rules


def test_the_local_provider_runs_an_isolated_agent_as_its_host_sees_it(tmp_path: Path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="postgresql:///db", home=tmp_path,
                           topic_prefix="p.", storage_endpoint=f"http://{GATEWAY}:7000", system_bucket="sys-b")
    provider = LocalProvider(config, (sys.executable, "-m", "worker"), ("--pids-limit", "64"),
                             worker_bootstrap=f"{GATEWAY}:9093", worker_credentials=tmp_path / "worker.json",
                             isolated=True)
    spec = InstanceSpec(name="w1", pool="standard", machine_type="local-2", cores_mcpu=2000, memory_bytes=8 << 30,
                        storage_gib=10, preemptible=True, region="local")
    command = provider.command_for(spec, "10.213.7.9")
    enter = command[:command.index("--") + 1]
    assert enter[1:5] == ["-m", "deploy.host_init", "enter", "--netns"] and enter[5] == host_name(tmp_path, "w1")
    agent = command[len(enter):]
    flags = dict(zip(agent[3::2], agent[4::2], strict=False))
    assert agent[:3] == [sys.executable, "-m", "worker"]
    assert flags["--home"] == "/var/lib/squall" and flags["--agent-host"] == "10.213.7.9"
    assert flags["--kafka-credentials"] == f"{INSIDE_CREDENTIALS}/worker.json"
    assert flags["--bootstrap"] == f"{GATEWAY}:9093" and flags["--job-firewall-block"] == SUBNET
    assert "--database-url" not in agent and str(tmp_path) not in " ".join(agent)  # nothing of $SQUALL_HOME
    assert agent[-3:] == ["--preemptible", "--pids-limit", "64"]
    # its Prometheus endpoint on its host's address, where `squall status` (and a scraper) finds it
    assert flags["--metrics-host"] == "10.213.7.9" and flags["--metrics-port"] == str(ISOLATED_METRICS_PORT)
    (tmp_path / "instances").mkdir(exist_ok=True)
    (tmp_path / "instances" / "w1.cmd").write_text(json.dumps(command))
    assert metrics_url(tmp_path, "w1") == f"http://10.213.7.9:{ISOLATED_METRICS_PORT}/metrics"


def test_isolated_workers_refuse_endpoints_on_the_machines_loopback() -> None:
    with pytest.raises(isolation.IsolationError, match="loopback"):
        isolation.reachable_from_lan("127.0.0.1:9093", "the Kafka listener")
    with pytest.raises(isolation.IsolationError):
        isolation.reachable_from_lan("http://localhost:4443", "the object store")
    isolation.reachable_from_lan(f"{GATEWAY}:9093", "the Kafka listener")
    isolation.reachable_from_lan("http://10.0.0.5:80", "the object store")


def test_a_stack_json_from_before_isolation_loads_as_shared(tmp_path: Path) -> None:
    state = StackState(home=str(tmp_path), api_url="http://127.0.0.1:1", token="t", billing_project="b",
                       bootstrap="127.0.0.1:2", database_url="x", topic_prefix="p.", port=1, embedded_kafka=True,
                       embedded_postgres=True, isolated_workers=True)
    state.save()
    assert StackState.load(tmp_path) == state
    data = json.loads((tmp_path / "stack.json").read_text())
    del data["isolated_workers"]
    (tmp_path / "stack.json").write_text(json.dumps(data))
    loaded = StackState.load(tmp_path)
    assert loaded is not None and loaded.isolated_workers is False


def test_the_broker_and_the_store_keep_the_address_they_serve_workers_on(tmp_path: Path) -> None:
    """The supervisor restarts them without being told where: they must come back on the LAN."""
    from deploy.kafka import remember_external_host, stack_broker
    from deploy.objectstore import FakeGcsServer

    (tmp_path / "kafka").mkdir()
    assert stack_broker(tmp_path).external_bootstrap.startswith("127.0.0.1:")
    remember_external_host(tmp_path, GATEWAY)
    assert stack_broker(tmp_path).external_bootstrap.startswith(f"{GATEWAY}:")
    assert stack_broker(tmp_path, "127.0.0.1").external_bootstrap.startswith("127.0.0.1:")  # asked: as asked
    store = FakeGcsServer(tmp_path / "storage", host=GATEWAY)
    store.data_dir.mkdir()
    assert store.endpoint.startswith(f"http://{GATEWAY}:")
    store.host_file.write_text(f"{GATEWAY}\n")  # what start() records
    assert FakeGcsServer(tmp_path / "storage").endpoint == store.endpoint
