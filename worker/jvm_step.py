"""The main step of a JVM job: fetch the jar (once per URL), borrow a warm JVM, run main, classify.

Outcomes mirror container steps: main returned -> succeeded (exit 0); main threw -> failed
(exit 1, the exception as the error); the jar could not be run (no Main-Class, bad jar) -> error
invalid_job; the JVM ended (System.exit(n), OOM) -> by its container's exit like any container;
kill -> cancelled; timeout -> error timed_out. A killed or dead JVM is discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

from events import failures
from events.catalog import AttemptAssigned
from worker.clock import Clock
from worker.jvm_pool import ENTRYWAY_EXCEPTION, SUCCESS, WORK_DIR_IN_CONTAINER, JvmDied, JvmError, JvmPool
from worker.records import AttemptIds, AttemptRecords
from worker.step import PhaseTimer, StepResult, finish_step
from worker.storage import JobFiles, StorageError

LOG_POLL_S = 0.05


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


async def _tail(path: Path, sink: Callable[[bytes], None], stop: asyncio.Event) -> None:
    """Copy what the job writes to its log file into the step's log until stop (then drain)."""
    offset = 0
    while True:
        finished = stop.is_set()
        data = _read_from(path, offset)
        if data:
            offset += len(data)
            sink(data)
        if finished:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LOG_POLL_S)


async def run_jvm_step(a: AttemptAssigned, *, pool: JvmPool, files: JobFiles, records: AttemptRecords,
                       clock: Clock, killed: asyncio.Event, label: str) -> StepResult:
    result = StepResult(name="main", state="error", started_at=clock.now_ms())
    timer = PhaseTimer(clock, result.timing)
    if killed.is_set():
        return finish_step(result, clock, "cancelled", failures.KILLED, "killed before it started")
    jar_url = a.spec.jar_url or ""
    # per user and URL: a jar one user could read must never be handed to another who cannot
    jar_name = hashlib.sha256(f"{a.user}\0{jar_url}".encode()).hexdigest()[:24] + ".jar"
    jar_host = pool.work_dir / "jars" / jar_name
    try:
        with timer.phase("downloading_jar"):
            if not jar_host.exists():
                jar_host.parent.mkdir(parents=True, exist_ok=True)
                tmp = jar_host.with_suffix(f".{label}.tmp")
                await files.download(a.user, jar_url, tmp, io_dir=jar_host.parent)
                tmp.replace(jar_host)
        with timer.phase("starting_jvm"):
            jvm = await pool.acquire(a.cores_mcpu, a.memory_bytes)
    except StorageError as exc:
        state = "failed" if exc.cause == failures.INPUT_NOT_FOUND else "error"
        return finish_step(result, clock, state, exc.cause or failures.INPUT_FAILED, f"fetching the jar failed: {exc}")
    except JvmError as exc:
        return finish_step(result, clock, "error", failures.INTERNAL_ERROR, str(exc))

    log_host = pool.work_dir / "logs" / f"{label}.log"
    log_host.unlink(missing_ok=True)
    step_log = records.open_log(AttemptIds(a.batch_id, a.job_id, a.attempt_id), "main")
    step_log.start_flushing()
    stop_tail = asyncio.Event()
    tail = asyncio.create_task(_tail(log_host, step_log.append, stop_tail))
    job = asyncio.create_task(pool.send(jvm, f"{WORK_DIR_IN_CONTAINER}/jars/{jar_name}",
                                        f"{WORK_DIR_IN_CONTAINER}/logs/{label}.log", list(a.spec.command)))
    kill_watch = asyncio.create_task(killed.wait())
    reusable = False
    try:
        with timer.phase("running"):
            done, _ = await asyncio.wait({job, kill_watch}, timeout=a.spec.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if job not in done:
                job.cancel()
                await pool.runtime.kill(jvm.container_id)
                await asyncio.gather(job, return_exceptions=True)
                if kill_watch in done:
                    return finish_step(result, clock, "cancelled", failures.KILLED, "killed")
                return finish_step(result, clock, "error", failures.TIMED_OUT, f"timed out after {a.spec.timeout_s:g} s")
            try:
                code, message = job.result()
            except JvmError as exc:
                return finish_step(result, clock, "error", failures.INTERNAL_ERROR, str(exc))
            except JvmDied:
                exit_ = await pool.runtime.wait(jvm.container_id)
                result.exit_code, result.out_of_memory = exit_.exit_code, exit_.out_of_memory
                if exit_.exit_code == 0:
                    return finish_step(result, clock, "succeeded", None, None)
                if exit_.out_of_memory:
                    return finish_step(result, clock, "failed", failures.OUT_OF_MEMORY, "out of memory")
                return finish_step(result, clock, "failed", failures.NONZERO_EXIT, f"the JVM exited with {exit_.exit_code}")
            reusable = True
            if code == SUCCESS:
                result.exit_code = 0
                return finish_step(result, clock, "succeeded", None, None)
            if code == ENTRYWAY_EXCEPTION:
                return finish_step(result, clock, "error", failures.INVALID_JOB, f"the jar could not be run: {message}")
            result.exit_code = 1
            return finish_step(result, clock, "failed", failures.NONZERO_EXIT, message)
    finally:
        kill_watch.cancel()
        stop_tail.set()
        await asyncio.gather(tail, return_exceptions=True)
        await step_log.close()
        log_host.unlink(missing_ok=True)
        if reusable:
            pool.release(jvm)
        else:
            await pool.discard(jvm)
