"""One attempt in real podman containers: outcomes, limits, network, files, kill, images."""

from __future__ import annotations

import asyncio
import json

import pytest

from events import failures
from events.objectstore.layout import log_key, resource_usage_key
from tests.podman_support import PYTHON
from tests.unit.worker.factories import MIB, assignment
from worker.attempt import Attempt, AttemptServices

pytestmark = pytest.mark.podman


async def run(services: AttemptServices, a, kill_after_s: float | None = None):
    attempt = Attempt(a, services)
    if kill_after_s is not None:
        asyncio.get_running_loop().call_later(kill_after_s, attempt.kill)
    try:
        return await attempt.run(services.clock.now_ms())
    finally:
        await attempt.cleanup()


async def main_log(services: AttemptServices, a) -> str:
    r = services.records
    return (await r.store.get(r.bucket, log_key(a.batch_id, a.job_id, a.attempt_id, "main"))).decode()


async def test_success_with_env_log_and_usage(services, instance_name) -> None:
    a = assignment(instance_name, ("sh", "-c", "echo job=$HAIL_JOB_ID attempt=$HAIL_ATTEMPT_ID x=$X; sleep 0.3"),
                   env={"X": "42"})
    o = await run(services, a)
    assert (o.outcome, o.exit_code, o.failure_cause, o.out_of_memory) == ("Success", 0, None, False)
    assert await main_log(services, a) == f"job={a.job_id} attempt=a1 x=42\n"
    assert [s.name for s in o.steps] == ["input", "main", "output"]
    main = o.steps[1]
    assert main.state == "succeeded" and main.started_at <= main.ended_at
    assert {"pulling", "creating", "running"} <= set(main.timing)
    r = services.records
    usage = json.loads(await r.store.get(r.bucket, resource_usage_key(a.batch_id, a.job_id, "a1", "main")))
    assert usage["columns"][0] == "time_msecs" and len(usage["data"]) >= 1
    assert o.resource_usage is not None and o.resource_usage.max_memory_bytes > 0
    assert await services.runtime.list_by_label("squall.attempt", f"{a.batch_id}-{a.job_id}-a1") == []


async def test_nonzero_exit_is_failed(services, instance_name) -> None:
    o = await run(services, assignment(instance_name, ("sh", "-c", "exit 7")))
    assert (o.outcome, o.exit_code, o.failure_cause) == ("Failed", 7, failures.NONZERO_EXIT)


async def test_out_of_memory_is_failed_137_and_flagged(services, instance_name) -> None:
    a = assignment(instance_name, ("python3", "-c", "x = bytearray(200 * 1024 * 1024); print(len(x))"),
                   image=PYTHON, memory_bytes=64 * MIB)
    o = await run(services, a)
    assert (o.outcome, o.exit_code, o.out_of_memory, o.failure_cause) == ("Failed", 137, True, failures.OUT_OF_MEMORY)


async def test_timeout_is_error_timed_out(services, instance_name) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    o = await run(services, assignment(instance_name, ("sleep", "30"), timeout_s=1.0))
    assert (o.outcome, o.failure_cause) == ("Error", failures.TIMED_OUT)
    assert loop.time() - t0 < 8


async def test_storage_quota_exceeded_is_error(services, instance_name) -> None:
    # quota: min(16 MiB cap, 64 MiB/core x 0.25) = 16 MiB; writing 40 MiB hits ENOSPC
    o = await run(services, assignment(instance_name, ("sh", "-c", "dd if=/dev/zero of=/io/big bs=1M count=40")))
    assert (o.outcome, o.failure_cause) == ("Error", failures.STORAGE_QUOTA_EXCEEDED)
    ok = await run(services, assignment(instance_name, ("sh", "-c", "dd if=/dev/zero of=/io/small bs=1M count=4")))
    assert ok.outcome == "Success"
    assert ok.resource_usage is not None and ok.resource_usage.max_scratch_bytes >= 4 * MIB


async def test_pids_limit_stops_fork_bombs(services, instance_name) -> None:
    script = ("import subprocess\nps = []\ntry:\n    for _ in range(100):\n"
              "        ps.append(subprocess.Popen(['sleep', '5']))\nexcept OSError:\n    pass\n"
              "print(len(ps))\nfor p in ps:\n    p.kill()\nraise SystemExit(9 if len(ps) < 100 else 0)\n")
    a = assignment(instance_name, ("python3", "-c", script), image=PYTHON)
    o = await run(services, a)
    assert (o.outcome, o.exit_code) == ("Failed", 9)
    assert 50 < int((await main_log(services, a)).strip()) < 64  # the limit is 64 processes, python included


@pytest.mark.parametrize(("network", "has_default_route", "has_interface"),
                         [("none", False, False), ("private", False, True), ("public", True, True)])
async def test_network_isolation(services, instance_name, network, has_default_route, has_interface) -> None:
    # no internet here: public is shown by a default route, private by an interface without one
    a = assignment(instance_name, ("sh", "-c", "cat /proc/net/route; ls /sys/class/net"), network=network)
    o = await run(services, a)
    assert o.outcome == "Success"
    out = await main_log(services, a)
    routes = [line.split()[1] for line in out.splitlines()[1:] if line.startswith("eth") and "\t" in line]
    assert ("00000000" in routes) is has_default_route
    assert ("eth0" in out) is has_interface


async def test_input_and_output_files(services, instance_name) -> None:
    store, data = services.records.store, services.data_bucket
    await store.put(data, "in/in.txt", b"hello\n")
    a = assignment(instance_name, ("sh", "-c", "tr a-z A-Z < /io/data/in.txt > /io/out.txt"),
                   input_files=[(f"gs://{data}/in/in.txt", "/io/data/in.txt")],
                   output_files=[("/io/out.txt", f"gs://{data}/results/out.txt")])
    o = await run(services, a)
    assert o.outcome == "Success" and [s.state for s in o.steps] == ["succeeded", "succeeded", "succeeded"]
    assert await store.get(data, "results/out.txt") == b"HELLO\n"


async def test_missing_input_is_failed_and_output_escape_is_refused(services, instance_name, tmp_path) -> None:
    data = services.data_bucket
    o = await run(services, assignment(instance_name, ("true",), input_files=[(f"gs://{data}/nope", "/io/x")]))
    assert (o.outcome, o.failure_cause, o.error) == ("Failed", failures.INPUT_NOT_FOUND, f"input gs://{data}/nope not found")
    assert [s.state for s in o.steps] == ["failed", "skipped", "skipped"]
    # host paths never reach a copy, even if a spec naming one got into the log somehow
    o = await run(services, assignment(instance_name, ("true",), input_files=[("/etc/shadow", "/io/x")]))
    assert (o.outcome, o.failure_cause) == ("Error", failures.INPUT_FAILED)
    a = assignment(instance_name, ("ln", "-s", "/etc/shadow", "/io/link"),
                   output_files=[("/io/link", f"gs://{data}/stolen")])
    o = await run(services, a)
    assert (o.outcome, o.failure_cause) == ("Error", failures.OUTPUT_FAILED)
    assert not await services.records.store.exists(data, "stolen")


async def test_kill_mid_run_is_cancelled_within_seconds(services, instance_name) -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    o = await run(services, assignment(instance_name, ("sleep", "60")), kill_after_s=1.0)
    assert (o.outcome, o.failure_cause) == ("Cancelled", failures.KILLED)
    assert loop.time() - t0 < 6


async def test_image_not_found_is_error_without_retry(services, instance_name) -> None:
    o = await run(services, assignment(instance_name, ("true",), image="localhost/squall-missing:1"))
    assert (o.outcome, o.failure_cause) == ("Error", failures.IMAGE_NOT_FOUND)
    assert not failures.is_system_failure(o.failure_cause)


async def test_unreachable_registry_is_a_transient_pull_failure(services, instance_name) -> None:
    o = await run(services, assignment(instance_name, ("true",), image="registry.invalid/squall/none:1"))
    assert (o.outcome, o.failure_cause) == ("Error", failures.IMAGE_PULL_FAILED)
    assert failures.is_system_failure(o.failure_cause)


async def test_cpu_quota_limits_a_busy_loop(services, instance_name) -> None:
    # 250 mCPU: ~0.25 s of cpu in 1 s of wall time
    a = assignment(instance_name, ("python3", "-c", "import time,os\nt=time.time()\nwhile time.time()-t<1.5: pass\n"
                                   "print(round(sum(os.times()[:2]) / 1.5, 2))"), image=PYTHON, cores_mcpu=250)
    o = await run(services, a)
    assert o.outcome == "Success"
    assert float((await main_log(services, a)).strip()) < 0.4
