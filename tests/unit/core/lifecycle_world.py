"""Test support for the lifecycle: builders for batch-topic events and a tiny in-memory "log +
resolver" that settles a batch the way projections/resolver does (react, append, fold back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from events.catalog import (
    BatchCancelRequested,
    BatchCreated,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    Event,
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobCreated,
    JobCreating,
    JobGroupCancelRequested,
    JobGroupCreated,
    JobSpec,
    Resources,
    RetryPolicy,
)
from events.core.lifecycle import BatchState, evolve, react

BATCH = 7
USER = "alice"
PRODUCER = "test/1"

SPEC = JobSpec(process_type="docker", image="ubuntu:24.04", command=("true",), env=(), input_files=(),
               output_files=(), always_copy_output=False, network="public",
               resources=Resources(cores_mcpu=1000, memory_bytes=3_840 * 2**20, storage_gib=0, preemptible=True,
                                   worker_type="standard"))


def private_instance(job_id: int, attempt_id: str) -> str:
    return f"job-{BATCH}-{job_id}-{attempt_id}"


class Clock:
    """Monotonic fake time for event builders (tests never read a real clock)."""

    def __init__(self, start: int = 1_700_000_000_000) -> None:
        self.now = start

    def tick(self, ms: int = 10) -> int:
        self.now += ms
        return self.now


@dataclass
class Builder:
    """Makes the events a front end, scheduler and worker would append for batch BATCH."""

    batch_id: int = BATCH
    clock: Clock = field(default_factory=Clock)
    n: int = 0

    def _env(self, kind: str) -> dict[str, object]:
        self.n += 1
        return {"event_id": f"{kind}-{self.n}", "occurred_at": self.clock.tick(), "producer": PRODUCER,
                "batch_id": self.batch_id}

    def batch(self, cancel_after_n_failures: int | None = None) -> BatchCreated:
        return BatchCreated(**self._env("bc"), user=USER, billing_project="bp", token="tok", attributes={},
                            cancel_after_n_failures=cancel_after_n_failures)

    def update(self, update_id: int, n_jobs: int, start_job_id: int, n_job_groups: int = 0,
               start_job_group_id: int = 1) -> BatchUpdateCreated:
        return BatchUpdateCreated(**self._env("uc"), update_id=update_id, token=f"u{update_id}", n_jobs=n_jobs,
                                  n_job_groups=n_job_groups, start_job_id=start_job_id,
                                  start_job_group_id=start_job_group_id)

    def group(self, job_group_id: int, parent: int = 0, update_id: int = 1,
              cancel_after_n_failures: int | None = None) -> JobGroupCreated:
        return JobGroupCreated(**self._env("gc"), update_id=update_id, job_group_id=job_group_id,
                               parent_job_group_id=parent, attributes={},
                               cancel_after_n_failures=cancel_after_n_failures)

    def job(self, job_id: int, parents: Sequence[int] = (), update_id: int = 1, always_run: bool = False,
            n_max_attempts: int = 20, group: int = 0, retry_policy: RetryPolicy | None = None,
            spec: JobSpec = SPEC) -> JobCreated:
        return JobCreated(**self._env("jc"), job_id=job_id, update_id=update_id, job_group_id=group,
                          parent_ids=tuple(parents), always_run=always_run, n_max_attempts=n_max_attempts,
                          user=USER, billing_project="bp", attributes={}, spec=spec, spec_json="{}",
                          retry_policy=retry_policy)

    def commit(self, update_id: int, n_jobs: int, start_job_id: int) -> BatchUpdateCommitted:
        return BatchUpdateCommitted(**self._env("cm"), update_id=update_id, n_jobs=n_jobs, n_job_groups=0,
                                    start_job_id=start_job_id, start_job_group_id=1)

    def sj(self, job_id: int, attempt_id: str, epoch: int = 1, instance: str = "i-1",
           awaits_verdict: bool = True, memory_bytes: int = 2**30) -> JobAttemptScheduled:
        return JobAttemptScheduled(**self._env("sj"), job_id=job_id, attempt_id=attempt_id, instance_name=instance,
                                   scheduler_epoch=epoch, user=USER, cores_mcpu=1000, memory_bytes=memory_bytes,
                                   storage_gib=0, awaits_verdict=awaits_verdict)

    def creating(self, job_id: int, attempt_id: str, epoch: int = 1, instance: str | None = None,
                 awaits_verdict: bool = True) -> JobCreating:
        """The scheduler asked for a job-private instance for this attempt (named as the scheduler names it)."""
        return JobCreating(**self._env("jcr"), job_id=job_id, attempt_id=attempt_id,
                           instance_name=instance or private_instance(job_id, attempt_id), scheduler_epoch=epoch,
                           user=USER, awaits_verdict=awaits_verdict)

    def mjs(self, job_id: int, attempt_id: str, instance: str = "i-1") -> JobAttemptStarted:
        return JobAttemptStarted(**self._env("mjs"), job_id=job_id, attempt_id=attempt_id, instance_name=instance,
                                 started_at=self.clock.now)

    def mjc(self, job_id: int, attempt_id: str, outcome: str = "Success", cause: str | None = None,
            exit_code: int | None = 0, instance: str = "i-1") -> JobAttemptCompleted:
        return JobAttemptCompleted(**self._env("mjc"), job_id=job_id, attempt_id=attempt_id, instance_name=instance,
                                   outcome=outcome, exit_code=exit_code, failure_cause=cause, out_of_memory=False,
                                   started_at=self.clock.now - 5, ended_at=self.clock.now, steps=())

    def cancel(self) -> BatchCancelRequested:
        return BatchCancelRequested(**self._env("cr"), user=USER, reason="requested")

    def cancel_group(self, job_group_id: int) -> JobGroupCancelRequested:
        return JobGroupCancelRequested(**self._env("gcr"), job_group_id=job_group_id, user=USER)

    def dag(self, parents: dict[int, Sequence[int]], always_run: Iterable[int] = (), update_id: int = 1,
            start_job_id: int = 1, n_max_attempts: int = 20) -> list[Event]:
        """An update holding jobs start_job_id.. with the given parents (absolute ids), committed."""
        always = set(always_run)
        n = len(parents)
        events: list[Event] = [self.update(update_id, n, start_job_id)]
        events += [self.job(j, ps, update_id=update_id, always_run=j in always, n_max_attempts=n_max_attempts)
                   for j, ps in sorted(parents.items())]
        events.append(self.commit(update_id, n, start_job_id))
        return events


@dataclass
class World:
    """A batch's log and its folded state, settled like the resolver settles it."""

    log: list[Event] = field(default_factory=list)
    state: BatchState | None = None

    def append(self, *events: Event) -> None:
        for e in events:
            self.log.append(e)
            self.state = evolve(self.state, e)

    def settle(self, max_rounds: int = 10_000) -> list[Event]:
        """React and append until nothing new is derived; returns every derived event (assignment
        events included, though they never enter the batch log)."""
        derived: list[Event] = []
        for _ in range(max_rounds):
            assert self.state is not None
            out = react(self.state, PRODUCER)
            self.state.clear_dirty()
            derived += out
            batch_events = [e for e in out if e.TOPIC == "batch"]
            if not batch_events:
                return derived
            self.append(*batch_events)
        raise AssertionError("react never settled")

    def job_state(self, job_id: int) -> str:
        assert self.state is not None
        return self.state.jobs[job_id].state


def of_type(events: Iterable[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]
