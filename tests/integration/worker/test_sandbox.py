"""The job sandbox in real podman containers: user namespace, capabilities, no-new-privileges,
bounded root filesystem, /io ownership, cgroup readings; and which create/start failures are the
job's own (final, with the runtime's message) and which stay the system's.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest

from events import failures
from tests.integration.worker.test_attempt_limits import main_log, run
from tests.podman_support import BUSYBOX, PYTHON
from tests.unit.worker.factories import MIB, assignment
from worker.attempt import Attempt, AttemptServices
from worker.cgroups import ContainerCgroup
from worker.clock import SystemClock
from worker.podman_runtime import PodmanRuntime
from worker.records import AttemptIds, AttemptRecords
from worker.runtime import ContainerSpec, RuntimeUnavailable
from worker.sandbox import capability_mask
from worker.step import run_container_step
from worker.userns import SLOT_SIZE, read_subid_range

pytestmark = pytest.mark.podman


def status_fields(log: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in log.splitlines() if ":" in line)}


async def test_uid_0_in_a_job_is_an_unprivileged_host_range_of_its_own(services, instance_name) -> None:
    (start, count), _ = read_subid_range()
    script = "cat /proc/self/uid_map /proc/self/gid_map; sleep 1"
    jobs = [assignment(instance_name, ("sh", "-c", script)) for _ in range(2)]
    outcomes = await asyncio.gather(*(run(services, a) for a in jobs))
    assert [o.outcome for o in outcomes] == ["Success", "Success"]
    maps = []
    for a in jobs:
        uid_line, gid_line = (await main_log(services, a)).splitlines()
        inside, host, size = map(int, uid_line.split())
        assert (inside, size) == (0, SLOT_SIZE) and gid_line.split() == uid_line.split()
        assert host != 0 and start <= host and host + size <= start + count  # never host root
        maps.append(host)
    assert maps[0] != maps[1]  # two jobs running side by side never share ids


async def test_capabilities_are_exactly_the_allowed_set_and_no_new_privileges(services, instance_name) -> None:
    a = assignment(instance_name, ("cat", "/proc/self/status"))
    assert (await run(services, a)).outcome == "Success"
    status = status_fields(await main_log(services, a))
    allowed = f"{capability_mask():016x}"
    assert allowed == "00000000000000fb"  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
    assert (status["CapEff"], status["CapPrm"], status["CapBnd"]) == (allowed, allowed, allowed)
    assert (status["CapInh"], status["CapAmb"], status["NoNewPrivs"]) == ("0" * 16, "0" * 16, "1")
    assert status["Seccomp"] == "2"  # podman's filter stays on


async def test_writes_to_the_root_filesystem_are_bounded_and_never_reach_the_image(services, instance_name) -> None:
    small = assignment(instance_name, ("sh", "-c", "echo changed > /etc/motd && echo new > /bin/newfile && "
                                                   "cat /etc/motd /bin/newfile"))
    assert (await run(services, small)).outcome == "Success"
    assert await main_log(services, small) == "changed\nnew\n"
    # past the 16 MiB quota: ENOSPC in the job, reported as the storage quota
    big = assignment(instance_name, ("sh", "-c", "dd if=/dev/zero of=/big bs=1M count=40 2>&1; exit 1"))
    o = await run(services, big)
    assert (o.outcome, o.failure_cause) == ("Error", failures.STORAGE_QUOTA_EXCEEDED)
    assert "No space left on device" in await main_log(services, big)
    # the image itself did not change: a new job sees none of it
    check = assignment(instance_name, ("sh", "-c", "ls /big /bin/newfile 2>&1; cat /etc/motd 2>&1; true"))
    assert (await run(services, check)).outcome == "Success"
    out = await main_log(services, check)
    assert "changed" not in out and out.count("No such file") >= 3


async def test_io_is_root_owned_on_both_sides(services, instance_name) -> None:
    store, data = services.records.store, services.data_bucket
    await store.put(data, "in/in.txt", b"input\n")
    script = ("stat -c '%u:%g %a' /io /io/in.txt; echo more >> /io/in.txt; echo done > /io/result.txt; "
              "mkdir /io/d && chown 1000:1000 /io/d && stat -c %u /io/d")
    a = assignment(instance_name, ("sh", "-c", script), input_files=[(f"gs://{data}/in/in.txt", "/io/in.txt")],
                   output_files=[("/io/result.txt", f"gs://{data}/out/result.txt")])
    o = await run(services, a)
    assert o.outcome == "Success", await main_log(services, a)
    assert (await main_log(services, a)).splitlines() == ["0:0 755", "0:0 644", "1000"]
    assert await store.get(data, "out/result.txt") == b"done\n"


async def test_cgroup_readings_on_this_host(services, podman, instance_name) -> None:
    # v1 here: usage from cpuacct/memory; the OOM kill from memory.oom_control as well as podman's flag
    a = assignment(instance_name, ("python3", "-c", "x = bytearray(200 * 1024 * 1024)"), image=PYTHON,
                   memory_bytes=64 * MIB)
    o = await run(services, a)
    assert (o.outcome, o.failure_cause, o.out_of_memory) == ("Failed", failures.OUT_OF_MEMORY, True)
    assert o.resource_usage is not None and o.resource_usage.max_memory_bytes > 16 * MIB  # the peak, not a sample
    # the unified (v2) hierarchy of this hybrid host carries cpu.stat and cgroup.events: the v2 reader uses them
    spec = ContainerSpec(name=f"squall-test-{uuid.uuid4().hex[:8]}", image=BUSYBOX,
                         command=("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30"))
    cid = await podman.create(spec)
    try:
        await podman.start(cid)
        v2 = ContainerCgroup(cid, root=Path("/sys/fs/cgroup/unified"), unified=True)
        await asyncio.sleep(1.0)
        stats = v2.stats(("cpu.stat",))
        assert stats is not None and stats.cpu_usage_ns and stats.cpu_usage_ns > 10_000_000
        assert v2.is_empty() is False
        await podman.kill(cid)
        await podman.wait(cid)
        assert v2.is_empty() in (True, None)  # empty, or already removed by podman's cleanup
    finally:
        await podman.remove(cid)


# the job's own mistakes: final at once, with the runtime's message -------------------------------
async def test_an_executable_missing_from_the_image_is_the_users_error(services, instance_name) -> None:
    # an unmodified hailtop BashJob on busybox: before, internal_error and retried up to 20 times
    o = await run(services, assignment(instance_name, ("/bin/bash", "-c", "echo hi")))
    assert (o.outcome, o.failure_cause) == ("Error", failures.CONTAINER_SPEC_INVALID)
    assert "executable file `/bin/bash` not found" in (o.error or "")
    assert not failures.is_system_failure(o.failure_cause)
    assert await services.runtime.list_by_label("squall.instance", instance_name) == []  # cleaned up


async def test_a_missing_working_directory_is_the_users_error(podman, worker_store, tmp_path: Path) -> None:
    store, system, _data = worker_store
    spec = ContainerSpec(name=f"squall-test-{uuid.uuid4().hex[:8]}", image=BUSYBOX, command=("true",),
                         workdir="/no/such/dir")
    r = await run_container_step("main", spec, runtime=podman, records=AttemptRecords(store, system, tmp_path / "spool"),
                                 ids=AttemptIds(1, 1, "a"), clock=SystemClock(), killed=asyncio.Event())
    try:
        assert (r.state, r.failure_cause) == ("error", failures.CONTAINER_SPEC_INVALID)
        assert 'workdir "/no/such/dir" does not exist' in (r.error or "")
    finally:
        if r.container_id:
            await podman.remove(r.container_id)


@pytest.fixture
def image_with_bad_entrypoint(tmp_path: Path):
    tag = f"localhost/squall-test-entrypoint:{uuid.uuid4().hex[:8]}"
    (tmp_path / "Containerfile").write_text(f'FROM {BUSYBOX}\nENTRYPOINT ["/no/such/entrypoint"]\n'
                                            "WORKDIR /made/by/podman\n")
    subprocess.run(["podman", "build", "-q", "--network", "none", "-t", tag, str(tmp_path)], check=True,
                   capture_output=True)
    yield tag
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True)


async def test_an_invalid_entrypoint_is_the_users_error(services, instance_name, image_with_bad_entrypoint) -> None:
    o = await run(services, assignment(instance_name, ("true",), image=image_with_bad_entrypoint))
    assert (o.outcome, o.failure_cause) == ("Error", failures.CONTAINER_SPEC_INVALID)
    assert "/no/such/entrypoint" in (o.error or "")  # (the image's WORKDIR was created, as podman run does)


@pytest.mark.parametrize(("image", "words"), [("UPPER/Case:tag", "repository name must be lowercase"),
                                              ("localhost/UPPER:1", "repository name must be lowercase"),
                                              ("a b", "invalid reference format")])
async def test_a_malformed_image_reference_is_the_users_error(services, instance_name, image, words) -> None:
    # before: "repository name must be lowercase" was a transient pull failure, retried
    o = await run(services, assignment(instance_name, ("true",), image=image))
    assert (o.outcome, o.failure_cause) == ("Error", failures.INVALID_IMAGE_REFERENCE)
    assert words in (o.error or "")


async def test_the_engine_being_down_stays_a_system_failure(services, tmp_path, instance_name) -> None:
    down = PodmanRuntime(tmp_path / "no-podman.sock")
    attempt = Attempt(assignment(instance_name, ("true",)),
                      AttemptServices(instance_name=instance_name, runtime=down, scratch=services.scratch,
                                      files=services.files, records=services.records, clock=services.clock,
                                      limits=services.limits))
    try:
        with pytest.raises(RuntimeUnavailable):  # the agent reports it as internal_error: retried
            await attempt.run(services.clock.now_ms())
    finally:
        await services.scratch.destroy(attempt.scratch_name)
        await down.close()
