"""cgroup parsing (pure) for v1 and v2, and the reader against a v2 host's file layout (fixtures)."""

from __future__ import annotations

import shutil
from pathlib import Path

from worker.cgroups import CgroupStats, ContainerCgroup, cgroup_dirs, is_unified, parse_v1, parse_v2
from worker.runtime import UsageSample
from worker.usage import UsageSeries

V2_HOST = Path(__file__).parent / "fixtures" / "cgroup_v2"
RUNNING, OOM_KILLED = "5f0c1d2e", "9a8b7c6d"


def test_v2_files_parse_to_usage_oom_pids_and_io() -> None:
    files = {p.name: p.read_text() for p in (V2_HOST / "machine.slice" / f"libpod-{RUNNING}.scope").iterdir()
             if p.is_file()}
    assert parse_v2(files) == CgroupStats(cpu_usage_ns=2_734_512_000, memory_bytes=53_002_240,
                                          memory_peak_bytes=71_827_456, oom_kills=0, pids=4,
                                          io_read_bytes=1_130_496 + 4096, io_write_bytes=8192)


def test_v1_files_parse_the_same_fields() -> None:
    # recorded from this project's (v1) machines; blkio is empty ("Total 0") for a job that read nothing
    files = {"cpuacct/cpuacct.usage": "2045872\n", "memory/memory.usage_in_bytes": "262144\n",
             "memory/memory.max_usage_in_bytes": "1048576\n",
             "memory/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
             "pids/pids.current": "1\n",
             "blkio/blkio.throttle.io_service_bytes": "254:0 Read 4096\n254:0 Write 0\n254:0 Sync 4096\n"
                                                      "254:0 Async 0\n254:0 Total 4096\nTotal 4096\n"}
    assert parse_v1(files) == CgroupStats(cpu_usage_ns=2_045_872, memory_bytes=262_144, memory_peak_bytes=1_048_576,
                                          oom_kills=1, pids=1, io_read_bytes=4096, io_write_bytes=0)
    assert parse_v1({"memory/memory.usage_in_bytes": "max\n"}) == CgroupStats()  # absent or unparsable: None


def test_a_v2_host_is_recognised_and_both_podman_layouts_are_found() -> None:
    assert is_unified(V2_HOST) and not is_unified(Path(__file__).parent)
    assert cgroup_dirs("abc", unified=True, root=V2_HOST) == [V2_HOST / "libpod_parent/libpod-abc",
                                                               V2_HOST / "machine.slice/libpod-abc.scope"]
    assert cgroup_dirs("abc", unified=False) == [Path("libpod_parent/libpod-abc"),
                                                 Path("machine.slice/libpod-abc.scope")]


def test_v2_reader_samples_a_running_container_under_systemd() -> None:
    cg = ContainerCgroup(RUNNING, root=V2_HOST)
    assert cg.unified
    usage = cg.usage()
    assert usage is not None
    assert (usage.cpu_usage_ns, usage.memory_bytes, usage.memory_peak_bytes) == (2_734_512_000, 53_002_240, 71_827_456)
    assert cg.oom_kills() == 0
    # the scope's own cgroup.procs is empty (its processes are in container/): populated says it runs
    assert cg.is_empty() is False


def test_v2_reader_sees_the_oom_kill_and_the_exit(tmp_path: Path) -> None:
    cg = ContainerCgroup(OOM_KILLED, root=V2_HOST)
    assert cg.oom_kills() == 1 and cg.is_empty() is True
    gone = ContainerCgroup("00000000", root=V2_HOST)
    assert gone.usage() is None and gone.oom_kills() is None and gone.is_empty() is None
    # a cgroup removed after it was found reads as gone, not as zeros
    host = tmp_path / "host"
    shutil.copytree(V2_HOST, host)
    moving = ContainerCgroup(OOM_KILLED, root=host)
    assert moving.stats() is not None
    shutil.rmtree(host / "libpod_parent" / f"libpod-{OOM_KILLED}")
    assert moving.stats() is None and moving.is_empty() is None


def test_the_peak_counts_as_the_maximum_even_between_samples() -> None:
    s = UsageSeries()
    s.add(1000, UsageSample(cpu_usage_ns=0, memory_bytes=10, memory_peak_bytes=70), io_bytes=0)
    s.add(2000, UsageSample(cpu_usage_ns=1, memory_bytes=20), io_bytes=0)
    assert s.max_memory_bytes == 70 and [r[1] for r in s.rows] == [10, 20]
