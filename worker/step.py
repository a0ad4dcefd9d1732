"""One container step of an attempt (the main step; a future JVM step reuses the shape):
pull, create, start, stream the log, sample usage, and end by exit, timeout or kill.

States and causes follow Hail's worker (hail-is/hail batch/batch/worker/worker.py): exit 0 -> succeeded; non-zero -> failed
(OOM included, flagged); timeout -> error "timed out"; image missing, a malformed image reference or
a spec the runtime refuses (no such executable, working directory or user) -> error, never retried;
kill -> cancelled.
The container is left in place: the attempt removes it only after the outcome is journaled, so
an agent restarted in between can still read the real exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from events import failures
from worker.clock import Clock
from worker.records import AttemptIds, AttemptRecords
from worker.runtime import (
    ContainerRuntime,
    ContainerSpec,
    ContainerSpecInvalid,
    ImageNotFound,
    ImagePullFailed,
    InvalidImageReference,
)
from worker.usage import UsageSeries, sample_until_stopped

LOG_DRAIN_TIMEOUT_S = 10.0


@dataclass
class StepResult:
    name: str
    state: str  # succeeded | failed | error | cancelled | skipped
    started_at: int | None = None
    ended_at: int | None = None
    exit_code: int | None = None
    out_of_memory: bool = False
    failure_cause: str | None = None
    error: str | None = None
    timing: dict[str, dict[str, int | None]] = field(default_factory=dict)
    container_id: str | None = None
    container_started_at: int | None = None
    container_finished_at: int | None = None
    usage: UsageSeries | None = None

    @property
    def ran_container(self) -> bool:
        return self.container_started_at is not None


def skipped(name: str) -> StepResult:
    return StepResult(name=name, state="skipped")


class PhaseTimer:
    """Records named phases of a step (Hail's `timing`: start_time, finish_time, duration in ms)."""

    def __init__(self, clock: Clock, timing: dict[str, dict[str, int | None]]) -> None:
        self.clock, self.timing = clock, timing

    @contextlib.contextmanager
    def phase(self, name: str) -> Any:
        start = self.clock.now_ms()
        self.timing[name] = {"start_time": start, "finish_time": None, "duration": None}
        try:
            yield
        finally:
            end = self.clock.now_ms()
            self.timing[name].update(finish_time=end, duration=end - start)


async def run_container_step(name: str, spec: ContainerSpec, *, runtime: ContainerRuntime, records: AttemptRecords,
                             ids: AttemptIds, clock: Clock, killed: asyncio.Event,
                             timeout_s: float | None = None, io_bytes: Callable[[], int] = lambda: 0,
                             existing_container_id: str | None = None) -> StepResult:
    result = StepResult(name=name, state="error", started_at=clock.now_ms())
    timer = PhaseTimer(clock, result.timing)
    if killed.is_set():
        return finish_step(result, clock, "cancelled", failures.KILLED, "killed before it started")
    cid = existing_container_id
    if cid is None:
        try:
            with timer.phase("pulling"):
                await runtime.ensure_image(spec.image)
            with timer.phase("creating"):
                cid = await runtime.create(spec)
                result.container_id = cid
                await runtime.start(cid)
        except ImageNotFound as exc:
            return finish_step(result, clock, "error", failures.IMAGE_NOT_FOUND, str(exc))
        except InvalidImageReference as exc:  # the user's mistakes: final, with the runtime's message
            return finish_step(result, clock, "error", failures.INVALID_IMAGE_REFERENCE, str(exc))
        except ContainerSpecInvalid as exc:
            return finish_step(result, clock, "error", failures.CONTAINER_SPEC_INVALID, str(exc))
        except ImagePullFailed as exc:
            return finish_step(result, clock, "error", failures.IMAGE_PULL_FAILED, str(exc))
    result.container_id = cid

    step_log = records.open_log(ids, name)
    step_log.start_flushing()
    logs = asyncio.create_task(runtime.follow_logs(cid, step_log.append))
    series = UsageSeries()
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(sample_until_stopped(
        series, lambda: runtime.usage(cid), io_bytes, clock.now_ms, stop_sampling))
    waiter = asyncio.create_task(runtime.wait(cid))
    kill_watch = asyncio.create_task(killed.wait())
    ended_by: str | None = None
    try:
        with timer.phase("running"):
            done, _ = await asyncio.wait({waiter, kill_watch}, timeout=timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done:
                ended_by = "killed" if kill_watch in done else "timed_out"
                await runtime.kill(cid)
            exit_ = await waiter
    finally:
        kill_watch.cancel()
        stop_sampling.set()
        await asyncio.gather(sampler, return_exceptions=True)
        if waiter.done():
            try:
                await asyncio.wait_for(logs, LOG_DRAIN_TIMEOUT_S)
            except Exception:  # the log is best effort (timeout included); the outcome is not
                logs.cancel()
        else:  # we are being cancelled (agent stopping hard): the container lives on, stop following it
            waiter.cancel()
            logs.cancel()
            step_log.abandon()  # the restarted agent re-attaches and re-reads the container's whole log
    await step_log.close()  # ships the whole log (or leaves it in the spool for the agent to ship)
    await records.write_usage(ids, name, series.to_json())
    result.usage = series
    result.exit_code = exit_.exit_code
    result.out_of_memory = exit_.out_of_memory
    result.container_started_at = exit_.started_at_ms
    result.container_finished_at = exit_.finished_at_ms
    if ended_by == "killed":
        return finish_step(result, clock, "cancelled", failures.KILLED, "killed")
    if ended_by == "timed_out":
        return finish_step(result, clock, "error", failures.TIMED_OUT, f"timed out after {timeout_s:g} s")
    if exit_.exit_code == 0:
        return finish_step(result, clock, "succeeded", None, None)
    if exit_.out_of_memory:
        return finish_step(result, clock, "failed", failures.OUT_OF_MEMORY, "out of memory")
    return finish_step(result, clock, "failed", failures.NONZERO_EXIT, f"exit code {exit_.exit_code}")


def finish_step(result: StepResult, clock: Clock, state: str, cause: str | None, error: str | None) -> StepResult:
    result.state = state
    result.failure_cause = cause
    result.error = error
    result.ended_at = clock.now_ms()
    return result
