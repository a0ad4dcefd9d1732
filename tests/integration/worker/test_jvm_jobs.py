"""JVM jobs: a jar's main class in a warm JVM inside a podman container (the host JDK mounted)."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from pathlib import Path

import pytest

from events import failures
from events.objectstore.layout import log_key
from tests.podman_support import PYTHON
from tests.unit.worker.factories import MIB, assignment
from worker.attempt import Attempt, AttemptServices
from worker.clock import SystemClock
from worker.jvm_pool import JvmPool, compile_entryway, default_java_home
from worker.records import AttemptRecords
from worker.scratch import ScratchManager
from worker.storage import JobFiles, SharedStore

pytestmark = pytest.mark.podman

JOB_SOURCE = textwrap.dedent("""
    public class Job {
        public static void main(String[] args) throws Exception {
            String mode = args.length > 0 ? args[0] : "hello";
            switch (mode) {
                case "hello": System.out.println("hello from " + String.join(",", args)); break;
                case "throw": throw new IllegalStateException("job failed on purpose");
                case "exit": System.exit(3);
                case "sleep": Thread.sleep(60_000); break;
                default: System.out.println("?");
            }
        }
    }
""")


@pytest.fixture(scope="module")
def job_jar(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("jar")
    (d / "Job.java").write_text(JOB_SOURCE)
    subprocess.run(["javac", "--release", "17", "-d", str(d / "classes"), str(d / "Job.java")], check=True)
    jar = d / "job.jar"
    subprocess.run(["jar", "--create", "--file", str(jar), "--main-class", "Job", "-C", str(d / "classes"), "."],
                   check=True)
    return jar


@pytest.fixture
async def jar_url(worker_store, job_jar: Path) -> str:  # type: ignore[no-untyped-def]
    """The job's jar as a gs:// object (a JVM job's jar_url, like every job file, is never a host path)."""
    store, _, data = worker_store
    await store.upload_file(data, "jars/job.jar", job_jar)
    return f"gs://{data}/jars/job.jar"


@pytest.fixture
async def services(podman, tmp_path: Path, instance_name: str, worker_store):  # type: ignore[no-untyped-def]
    store, system, _ = worker_store
    java_home = default_java_home()
    pool = JvmPool(runtime=podman, instance_name=instance_name, work_dir=tmp_path / "jvm",
                   socket_dir=Path("/run/squall") / f"jvm-{instance_name}", image=PYTHON, java_home=java_home,
                   entryway_dir=compile_entryway(Path.home() / ".cache" / "squall" / "jvm-entryway", java_home))
    s = AttemptServices(instance_name=instance_name, runtime=podman,
                        scratch=ScratchManager(tmp_path / "scratch", mode="directory"),
                        files=JobFiles(SharedStore(store)), records=AttemptRecords(store, system, tmp_path / "spool"),
                        clock=SystemClock(), jvm=pool)
    try:
        yield s
    finally:
        await pool.close()


def jvm_job(instance_name: str, jar_url: str, *args: str, **kw):
    return assignment(instance_name, tuple(args), image=None, process_type="jvm", jar_url=jar_url,
                      cores_mcpu=1000, memory_bytes=512 * MIB, **kw)


async def main_log(services: AttemptServices, a) -> str:
    r = services.records
    return (await r.store.get(r.bucket, log_key(a.batch_id, a.job_id, "a1", "main"))).decode()


async def run(services, a, kill_after_s=None):
    attempt = Attempt(a, services)
    if kill_after_s is not None:
        asyncio.get_running_loop().call_later(kill_after_s, attempt.kill)
    try:
        return await attempt.run(services.clock.now_ms())
    finally:
        await attempt.cleanup()


async def test_jvm_jobs_run_in_a_warm_reused_jvm_with_outcomes_like_containers(services, instance_name, jar_url):
    ok = jvm_job(instance_name, jar_url, "hello", "a", "b")
    o = await run(services, ok)
    assert (o.outcome, o.exit_code) == ("Success", 0)
    assert await main_log(services, ok) == "hello from hello,a,b\n"
    warm = services.jvm._idle[(1000, 512 * MIB)][0].container_id

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    o = await run(services, jvm_job(instance_name, jar_url, "hello"))
    assert o.outcome == "Success" and loop.time() - t0 < 2.0  # no JVM start: the warm one ran it
    assert services.jvm._idle[(1000, 512 * MIB)][0].container_id == warm

    thrown = jvm_job(instance_name, jar_url, "throw")
    o = await run(services, thrown)
    assert (o.outcome, o.exit_code, o.failure_cause) == ("Failed", 1, failures.NONZERO_EXIT)
    assert "job failed on purpose" in o.error
    assert "IllegalStateException" in await main_log(services, thrown)

    o = await run(services, jvm_job(instance_name, jar_url, "exit"))
    assert (o.outcome, o.exit_code) == ("Failed", 3)  # System.exit ends the JVM: its exit status counts
    assert services.jvm._idle[(1000, 512 * MIB)] == []  # the warm JVM ran it and died: not pooled again


async def test_jvm_job_kill_and_timeout(services, instance_name, jar_url):
    t0 = asyncio.get_running_loop().time()
    o = await run(services, jvm_job(instance_name, jar_url, "sleep"), kill_after_s=3.0)
    assert (o.outcome, o.failure_cause) == ("Cancelled", failures.KILLED)
    assert asyncio.get_running_loop().time() - t0 < 15
    o = await run(services, jvm_job(instance_name, jar_url, "sleep", timeout_s=3.0))
    assert (o.outcome, o.failure_cause) == ("Error", failures.TIMED_OUT)
    assert await services.runtime.list_by_label("squall.role", f"jvm-{instance_name}") == []
