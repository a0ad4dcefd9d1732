"""The sandbox's pure parts: the create request, id-range leases, and the job firewall's rules and holders.
(tests/integration/worker/test_sandbox.py and test_job_firewall.py run them for real.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from worker.job_firewall import (
    Endpoint,
    FirewallPolicy,
    JobFirewall,
    parse_endpoint,
    render,
    resolve_endpoints,
)
from worker.job_networks import JobNetwork, JobNetworks
from worker.runtime import ContainerSpec, ContainerSpecInvalid, Mount
from worker.sandbox import CAPABILITIES, ImageConfig, capability_mask, create_body
from worker.userns import IdMapping, SlotAllocator, UsernsConfigError, parse_subid, read_subid_range

IMAGE = ImageConfig(layers=("/layers/top", "/layers/base"), env=("PATH=/usr/bin:/bin", "LANG=C.UTF-8"),
                    cmd=("/bin/sh",), working_dir="/work", user="")


def spec(**kw: object) -> ContainerSpec:
    base: dict[str, object] = {"name": "squall-w1-1-2-a1-main", "image": "img", "command": ("python3", "x.py")}
    return ContainerSpec(**{**base, **kw})  # type: ignore[arg-type]


def test_the_create_request_applies_every_part_of_the_sandbox() -> None:
    s = spec(env={"LANG": "en_US", "X": "1"}, mounts=(Mount("/scratch/vol/io", "/io"), Mount("/jdk", "/jdk", True)),
             memory_bytes=64 << 20, cpu_mcpu=250, pids_limit=100, labels={"squall.attempt": "1-2-a1"})
    body = create_body(s, IMAGE, IdMapping(1_000_065_536, 1_000_065_536, 65536), "/run/x/7/root", None)
    assert body["rootfs"] == "/run/x/7/root" and body["userns"] == {"nsmode": "private"}
    assert body["idmappings"]["UIDMap"] == [{"container_id": 0, "host_id": 1_000_065_536, "size": 65536}]
    assert body["idmappings"]["GIDMap"] == body["idmappings"]["UIDMap"]
    assert body["cap_drop"] == ["ALL"] and body["cap_add"] == [c for c, _ in CAPABILITIES]
    assert body["no_new_privileges"] is True
    assert body["mounts"] == [
        {"type": "bind", "source": "/scratch/vol/io", "destination": "/io", "options": ["rbind", "idmap"]},
        {"type": "bind", "source": "/jdk", "destination": "/jdk", "options": ["rbind", "idmap", "ro"]}]
    assert body["env"] == {"PATH": "/usr/bin:/bin", "LANG": "en_US", "X": "1"}  # the image's, then the job's
    assert (body["entrypoint"], body["command"]) == ([], ["python3", "x.py"])
    assert (body["work_dir"], body["create_working_dir"]) == ("/work", True)
    assert body["resource_limits"] == {"cpu": {"period": 100_000, "quota": 25_000},
                                       "memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 100}}
    assert body["netns"] == {"nsmode": "none"} and "networks" not in body
    networked = create_body(s, IMAGE, IdMapping(0, 0, 1), "/r", "squall-job-public")
    assert networked["netns"] == {"nsmode": "bridge"} and networked["networks"] == {"squall-job-public": {}}


def test_commands_follow_dockers_entrypoint_rule() -> None:
    with_entry = ImageConfig(layers=("/l",), entrypoint=("/entry",), cmd=("default",))
    assert create_body(spec(command=()), with_entry, IdMapping(0, 0, 1), "/r", None)["command"] == ["default"]
    body = create_body(spec(command=("a",)), with_entry, IdMapping(0, 0, 1), "/r", None)
    assert (body["entrypoint"], body["command"]) == (["/entry"], ["a"])
    assert create_body(spec(workdir="/mine"), IMAGE, IdMapping(0, 0, 1), "/r", None)["create_working_dir"] is False
    with pytest.raises(ContainerSpecInvalid, match="no command or entrypoint"):
        create_body(spec(command=()), ImageConfig(layers=("/l",)), IdMapping(0, 0, 1), "/r", None)


def test_capability_mask_is_what_proc_shows() -> None:
    assert f"{capability_mask():016x}" == "00000000000000fb"


def test_image_layers_come_from_the_overlay_driver_top_first() -> None:
    attrs = {"GraphDriver": {"Name": "overlay", "Data": {"UpperDir": "/s/top/diff", "LowerDir": "/s/b/diff:/s/a/diff"}},
             "Config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "", "User": "1000"}}
    image = ImageConfig.from_inspect(attrs)
    assert image.layers == ("/s/top/diff", "/s/b/diff", "/s/a/diff") and image.user == "1000"
    with pytest.raises(ValueError, match="not supported"):
        ImageConfig.from_inspect({"GraphDriver": {"Name": "btrfs", "Data": {}}})


def test_subid_ranges_are_read_and_a_missing_one_says_how_to_fix_it(tmp_path: Path) -> None:
    text = "embedded_postgres:100000:65536\nsquall:1000000000:1073741824\n"
    assert parse_subid(text, "squall") == [(1_000_000_000, 1_073_741_824)]
    (tmp_path / "subuid").write_text(text)
    (tmp_path / "subgid").write_text("embedded_postgres:100000:65536\n")
    with pytest.raises(UsernsConfigError, match="setup.sh"):
        read_subid_range(subuid=tmp_path / "subuid", subgid=tmp_path / "subgid")


def test_slot_leases_are_exclusive_idempotent_and_survive_the_process(tmp_path: Path) -> None:
    alloc = SlotAllocator((1000, 4 * 65536), (5000, 4 * 65536), tmp_path)
    assert alloc.n_slots == 4
    slots = [alloc.acquire(f"c{i}") for i in range(4)]
    assert sorted(slots) == [0, 1, 2, 3] and alloc.acquire("c2") == slots[2]  # the owner's lease again
    with pytest.raises(UsernsConfigError, match="all 4"):
        alloc.acquire("c4")
    assert alloc.mapping(slots[1]) == IdMapping(1000 + slots[1] * 65536, 5000 + slots[1] * 65536, 65536)
    # another process (another agent) sees the same leases and takes the freed slot
    assert alloc.release("c1") == slots[1] and alloc.release("c1") is None
    code = ("import sys; from pathlib import Path; from worker.userns import SlotAllocator; "
            f"a = SlotAllocator((1000, 4 * 65536), (5000, 4 * 65536), Path({str(tmp_path)!r})); print(a.acquire('x'))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == slots[1]
    assert alloc.leases() == {"c0": slots[0], "c2": slots[2], "c3": slots[3], "x": slots[1]}
    # a lease whose owner file was never written (the agent died in between) is still released
    (tmp_path / "owners" / "c3").unlink()
    assert alloc.release("c3") == slots[3] and "c3" not in alloc.leases()
    with pytest.raises(ValueError):
        alloc.lease_of("../escape")


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9092", ("127.0.0.1", 9092)), ("10.0.0.5", ("10.0.0.5", None)),
    ("http://127.0.0.1:8080/api", ("127.0.0.1", 8080)), ("[fd00::2]:443", ("fd00::2", 443)),
    ("fd00::2", ("fd00::2", None)), ("kafka.internal:9093", ("kafka.internal", 9093))])
def test_endpoints_parse(text: str, expected: tuple[str, int | None]) -> None:
    assert parse_endpoint(text) == expected


@pytest.mark.parametrize("bad", ["", "host:port", "1.2.3.4:0", "1.2.3.4:70000", ":80"])
def test_bad_endpoints_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(bad)


def test_endpoints_resolve_to_addresses() -> None:
    assert resolve_endpoints(["localhost:9092", "127.0.0.1:9092", "10.0.0.5"]) >= [
        Endpoint("10.0.0.5"), Endpoint("127.0.0.1", 9092)]


def test_the_rules_reject_host_metadata_control_plane_and_private_egress() -> None:
    policy = JobNetworks(blocked=(Endpoint("10.9.0.1", 9093), Endpoint("fd00::5"))).firewall_policy()
    script = render(policy)
    assert script.startswith("table inet squall_jobs\ndelete table inet squall_jobs\n")  # atomic replace
    assert 'elements = { "sqj-priv0", "sqj-pub0" }' in script
    assert "iifname @job_ifaces counter name host reject with icmpx admin-prohibited" in script  # INPUT: all
    assert "elements = { 169.254.169.254 }" in script
    assert "elements = { 10.9.0.1 . 9093 }" in script and "elements = { fd00::5 }" in script
    assert 'iifname "sqj-priv0" oifname != "sqj-priv0" counter name no_egress' in script
    with pytest.raises(ValueError):
        render(FirewallPolicy(interfaces=()))


def test_job_networks_are_checked_against_what_exists() -> None:
    net = JobNetwork("n", "10.213.7.128/26", "sqj-pub0", internal=False)
    assert net.gateway == "10.213.7.129"
    same = {"subnets": [{"subnet": "10.213.7.128/26"}], "network_interface": "sqj-pub0", "internal": False,
            "dns_enabled": False}
    assert net.mismatch(same) is None
    assert "subnet '10.88.0.0/16'" in (net.mismatch({**same, "subnets": [{"subnet": "10.88.0.0/16"}]}) or "")
    with pytest.raises(ValueError):
        JobNetworks.with_subnets("10.213.7.128/26", "not-a-subnet")


@pytest.fixture
def fake_nft(tmp_path: Path) -> Path:
    """Stands in for nft: records each script it is given (the real one runs in the integration tests)."""
    log = tmp_path / "nft.log"
    script = tmp_path / "nft"
    script.write_text(f"#!/bin/sh\ncat >> {log}\necho '---' >> {log}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_holders_share_the_table_and_the_last_one_removes_it(tmp_path: Path, fake_nft: Path) -> None:
    a = JobFirewall(FirewallPolicy(("sqj-pub0",), blocked=(Endpoint("10.0.0.1", 1),)), tmp_path / "fw", str(fake_nft))
    b = JobFirewall(FirewallPolicy(("sqj-pub0",), blocked=(Endpoint("10.0.0.2", 2),)), tmp_path / "fw", str(fake_nft))
    a.install()
    b.install()
    scripts = (tmp_path / "nft.log").read_text().split("---\n")
    assert "10.0.0.1 . 1" in scripts[1] and "10.0.0.2 . 2" in scripts[1]  # the union of the live holders
    assert a.release() is False
    last = (tmp_path / "nft.log").read_text().split("---\n")[2]
    assert "10.0.0.1" not in last and "10.0.0.2 . 2" in last
    # a holder whose process is gone no longer counts
    stale = b.holder.with_name("999999-1-deadbeef.json")
    stale.write_text(a.policy.to_json())
    assert b.release() is True
    assert (tmp_path / "nft.log").read_text().split("---\n")[3].endswith("delete table inet squall_jobs\n")
    assert not stale.exists() and os.listdir(b.dir / "holders") == []
