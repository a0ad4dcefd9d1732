"""Runs one attempt of a job: scratch volume, input step, main container, output step, outcome.

The agent decides *whether* to run (journal, concurrency, reporting); this module decides *how*,
and classifies the result (events/failures.py causes):
  input  copies input_files (gs:// objects) into /io, as the submitting user (worker/storage.py);
         a missing object -> Failed input_not_found; the store unavailable -> Error storage_unavailable
         (retried); anything else -> Error input_failed
  main   the job's image and command, with its cpu / memory / pids limits, network and timeout
  output copies output_files out of /io to gs:// if main succeeded or always_copy_output; fails ->
         Error output_failed (storage_unavailable: retried)
The attempt's outcome is main's unless main succeeded, then output's (Hail's rule). A main step
that failed with its /io volume full is Error storage_quota_exceeded rather than the user's Failed.
Each step's log, usage and the status so far go to squall's bucket as the step ends (worker/records.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from events import failures
from events.catalog import AttemptAssigned, ResourceUsageSummary, StepTiming
from worker.clock import Clock
from worker.jvm_pool import JvmPool
from worker.jvm_step import run_jvm_step
from worker.records import AttemptIds, AttemptRecords
from worker.runtime import LABEL_ATTEMPT, LABEL_INSTANCE, LABEL_STEP, ContainerRuntime, ContainerSpec, Mount
from worker.scratch import GIB, ScratchError, ScratchManager, ScratchVolume, scratch_quota_bytes
from worker.status import running_status_document
from worker.step import StepResult, run_container_step, skipped
from worker.storage import IO_MOUNT, JobFiles, StorageError, host_path_in_io

OUTCOME_OF_STATE = {"succeeded": "Success", "failed": "Failed", "error": "Error", "cancelled": "Cancelled"}


@dataclass(frozen=True)
class WorkerLimits:
    """Per-worker settings applied to every attempt."""

    pids_limit: int = 2048
    scratch_per_core_bytes: int = 5 * GIB  # Hail: storage_gib + min(5 GiB, 5 GiB x cores) per job
    scratch_cap_bytes: int = 5 * GIB


@dataclass
class AttemptServices:
    """Everything an attempt touches, built once by the agent."""

    instance_name: str
    runtime: ContainerRuntime
    scratch: ScratchManager
    files: JobFiles
    records: AttemptRecords
    clock: Clock
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    jvm: JvmPool | None = None  # None: this worker runs no JVM jobs
    region: str = "local"


@dataclass
class AttemptOutcome:
    outcome: str  # Success | Failed | Error | Cancelled
    failure_cause: str | None
    error: str | None
    exit_code: int | None
    out_of_memory: bool
    started_at: int
    ended_at: int
    steps: list[StepResult]
    resource_usage: ResourceUsageSummary | None

    def step_timings(self) -> tuple[StepTiming, ...]:
        return tuple(StepTiming(name=s.name, state=s.state, started_at=s.started_at, ended_at=s.ended_at,
                                exit_code=s.exit_code, out_of_memory=s.out_of_memory, error=s.error)
                     for s in self.steps)


def attempt_label(a: AttemptAssigned) -> str:
    """Unique per attempt across batches (attempt ids are only unique within a job)."""
    return f"{a.batch_id}-{a.job_id}-{a.attempt_id}"


def container_name(a: AttemptAssigned, step: str) -> str:
    """Deterministic, so the engine refuses a second container for the same attempt step."""
    return f"squall-{a.instance_name}-{attempt_label(a)}-{step}"


def job_env(a: AttemptAssigned) -> dict[str, str]:
    env = {e.name: e.value for e in a.spec.env}
    env.update(HAIL_BATCH_ID=str(a.batch_id), HAIL_JOB_ID=str(a.job_id), HAIL_ATTEMPT_ID=a.attempt_id,
               HAIL_JOB_GROUP_ID=str(a.job_group_id))
    return env


class Attempt:
    def __init__(self, assignment: AttemptAssigned, services: AttemptServices) -> None:
        self.a = assignment
        self.s = services
        self.killed = asyncio.Event()
        self.scratch_name = attempt_label(assignment)
        self.ids = AttemptIds(assignment.batch_id, assignment.job_id, assignment.attempt_id)
        self.container_ids: set[str] = set()

    def kill(self) -> None:
        """Stop as soon as possible; the outcome becomes Cancelled (killed) unless it already ended."""
        self.killed.set()

    def main_spec(self, volume: ScratchVolume) -> ContainerSpec:
        a = self.a
        return ContainerSpec(
            name=container_name(a, "main"), image=a.spec.image or "", command=tuple(a.spec.command),
            env=job_env(a), mounts=(Mount(str(volume.io_dir), str(IO_MOUNT)),),
            labels={LABEL_INSTANCE: a.instance_name, LABEL_ATTEMPT: attempt_label(a), LABEL_STEP: "main"},
            cpu_mcpu=a.cores_mcpu, memory_bytes=a.memory_bytes, pids_limit=self.s.limits.pids_limit,
            network=a.spec.network if a.spec.network in ("private", "public") else "none",
            writable_dir=str(volume.rootfs_dir))  # writes to / count against the scratch quota

    async def run(self, started_at: int, existing_main_container: str | None = None) -> AttemptOutcome:
        """Run every step (or, after a restart, follow the main container that is still there)."""
        a, clock = self.a, self.s.clock
        steps: list[StepResult] = []
        invalid = self._invalid_reason()
        if invalid:
            return self._outcome(started_at, [], "Error", failures.INVALID_JOB, invalid)
        if a.spec.process_type == "jvm":
            return await self._run_jvm(started_at)
        limits = self.s.limits
        quota = scratch_quota_bytes(a.storage_gib, a.cores_mcpu, limits.scratch_per_core_bytes,
                                    limits.scratch_cap_bytes)
        try:
            volume = await self.s.scratch.create(self.scratch_name, quota)
        except (ScratchError, OSError) as exc:
            return self._outcome(started_at, [], "Error", failures.INTERNAL_ERROR,
                                 f"preparing the scratch volume failed: {exc}")

        if existing_main_container is None:
            inp = await self._copy_step("input", volume, upload=False) if a.spec.input_files else skipped("input")
            steps.append(inp)
            if inp.state not in ("succeeded", "skipped"):
                steps += [skipped("main"), skipped("output")]
                return self._outcome(started_at, steps, OUTCOME_OF_STATE[inp.state], inp.failure_cause, inp.error)
            if inp.state == "succeeded":
                await self._step_ended(started_at, steps)
        else:
            steps.append(skipped("input"))  # it ran before the restart

        main = await run_container_step(
            "main", self.main_spec(volume), runtime=self.s.runtime, records=self.s.records, ids=self.ids,
            clock=clock, killed=self.killed, timeout_s=a.spec.timeout_s, io_bytes=volume.used_bytes,
            existing_container_id=existing_main_container)
        if main.container_id:
            self.container_ids.add(main.container_id)
        if main.state == "failed" and not main.out_of_memory and volume.is_full():
            main.state, main.failure_cause = "error", failures.STORAGE_QUOTA_EXCEEDED
            main.error = f"storage quota exceeded: /io is limited to {quota / GIB:.3g} GiB"
        steps.append(main)

        run_output = a.spec.output_files and main.state != "cancelled" and (
            main.state == "succeeded" or a.spec.always_copy_output)
        if run_output:  # the final status, written by the agent, covers the last step
            await self._step_ended(started_at, steps)
        out = await self._copy_step("output", volume, upload=True) if run_output else skipped("output")
        steps.append(out)

        if main.state != "succeeded" or out.state in ("succeeded", "skipped"):
            state, cause, error = main.state, main.failure_cause, main.error
        else:
            state, cause, error = out.state, out.failure_cause, out.error
        return self._outcome(started_at, steps, OUTCOME_OF_STATE[state], cause, error, volume)

    async def _step_ended(self, started_at: int, steps: list[StepResult]) -> None:
        """The status so far (state running, the ended steps' timings) in squall's bucket."""
        await self.s.records.write_status(self.ids, running_status_document(self.a, steps, started_at,
                                                                            self.s.region))

    async def _run_jvm(self, started_at: int) -> AttemptOutcome:
        assert self.s.jvm is not None
        main = await run_jvm_step(self.a, pool=self.s.jvm, files=self.s.files, records=self.s.records,
                                  clock=self.s.clock, killed=self.killed, label=attempt_label(self.a))
        steps = [skipped("input"), main, skipped("output")]
        return self._outcome(started_at, steps, OUTCOME_OF_STATE[main.state], main.failure_cause, main.error)

    def _invalid_reason(self) -> str | None:
        spec = self.a.spec
        if spec.process_type == "jvm":
            if self.s.jvm is None:
                return "this worker runs no JVM jobs (start it with a JDK available)"
            if not spec.jar_url:
                return "a jvm job needs a jar_url"
            if spec.input_files or spec.output_files:
                return "jvm jobs cannot have input_files or output_files"
            if not spec.jar_url.startswith("gs://"):
                return f"jar_url {spec.jar_url!r} must be a gs:// URL: squall never reads host paths for a job"
            return None
        if spec.process_type != "docker":
            return f"process type {spec.process_type!r} is not supported (docker or jvm)"
        if not spec.image:
            return "the job has no image"
        if not spec.command:
            return "the job has no command"
        return None

    async def _copy_step(self, name: str, volume: ScratchVolume, upload: bool) -> StepResult:
        a, clock = self.a, self.s.clock
        files = a.spec.output_files if upload else a.spec.input_files
        result = StepResult(name=name, state="succeeded", started_at=clock.now_ms())
        step_log = self.s.records.open_log(self.ids, name)
        step_log.start_flushing()
        cause = failures.OUTPUT_FAILED if upload else failures.INPUT_FAILED
        try:
            for f in files:
                if self.killed.is_set():
                    result.state, result.failure_cause, result.error = "cancelled", failures.KILLED, "killed"
                    break
                try:
                    if upload:
                        report = await self.s.files.upload(a.user, host_path_in_io(volume.io_dir, f.src), f.dst,
                                                           volume.io_dir, shown=f.src)
                    else:
                        report = await self.s.files.download(a.user, f.src, host_path_in_io(volume.io_dir, f.dst),
                                                             volume.io_dir)
                except StorageError as exc:
                    full = not upload and volume.is_full()
                    result.failure_cause = failures.STORAGE_QUOTA_EXCEEDED if full else (exc.cause or cause)
                    # a missing input is the user's mistake (Failed, as a non-zero exit); the rest are errors
                    result.state = "failed" if result.failure_cause == failures.INPUT_NOT_FOUND else "error"
                    result.error = str(exc) if result.failure_cause == failures.INPUT_NOT_FOUND \
                        else f"{name} failed: {exc}"
                    step_log.append(f"error: {exc}\n".encode())
                    break
                step_log.append(f"copied {f.src} -> {f.dst} ({report.objects} object"
                                f"{'s' if report.objects != 1 else ''}, {report.bytes} bytes)\n".encode())
        finally:
            await step_log.close()
        result.ended_at = clock.now_ms()
        result.timing = {name: {"start_time": result.started_at, "finish_time": result.ended_at,
                                "duration": result.ended_at - (result.started_at or 0)}}
        return result

    def _outcome(self, started_at: int, steps: list[StepResult], outcome: str, cause: str | None,
                 error: str | None, volume: ScratchVolume | None = None) -> AttemptOutcome:
        main = next((s for s in steps if s.name == "main"), None)
        usage = None
        if main is not None and main.usage is not None:
            scratch = main.usage.max_io_bytes
            if volume is not None:
                try:
                    scratch = max(scratch, volume.used_bytes())
                except OSError:
                    pass
            usage = ResourceUsageSummary(cpu_msec=main.usage.cpu_ns_total // 1_000_000,
                                         max_memory_bytes=main.usage.max_memory_bytes, max_scratch_bytes=scratch)
        return AttemptOutcome(
            outcome=outcome, failure_cause=cause if outcome != "Success" else None,
            error=error if outcome != "Success" else None,
            exit_code=main.exit_code if main is not None else None,
            out_of_memory=bool(main and main.out_of_memory), started_at=started_at,
            ended_at=self.s.clock.now_ms(), steps=steps, resource_usage=usage)

    async def cleanup(self) -> None:
        """Remove the attempt's containers and scratch volume (after its outcome is journaled)."""
        ids = self.container_ids or {c.id for c in await self.s.runtime.list_by_label(
            LABEL_ATTEMPT, attempt_label(self.a))}
        for cid in ids:
            await self.s.runtime.remove(cid)
        await self.s.scratch.destroy(self.scratch_name)
