"""The folded state of one batch: its updates, job groups, jobs, attempts and Hail's counters.

`evolve` (events/core/evolve.py) is the only writer. The classes are mutable with __slots__ on
purpose: a batch may hold millions of jobs, so an event changes one job in place instead of
copying the batch (a copy per event would make the fold quadratic), and a queued job must stay
small (bench: tests/bench/bench_core.py). Read them freely; never assign to them outside evolve.

`dirty_*` record what the last events touched, so `react` looks only there. They are bookkeeping,
not facts: `snapshot()` (what tests compare) leaves them out.
"""

from __future__ import annotations

from typing import Any, Final

from events.catalog import JobSpec, RetryPolicy
from events.core.decisions import DecisionKey
from events.core.interning import SpecInterner

# Job states (Hail's names; the API shows them verbatim).
PENDING: Final = "Pending"
READY: Final = "Ready"
CREATING: Final = "Creating"
RUNNING: Final = "Running"
SUCCESS: Final = "Success"
FAILED: Final = "Failed"
ERROR: Final = "Error"
CANCELLED: Final = "Cancelled"

JOB_STATES: Final = (PENDING, READY, CREATING, RUNNING, SUCCESS, FAILED, ERROR, CANCELLED)
COMPLETE_STATES: Final = frozenset({SUCCESS, FAILED, ERROR, CANCELLED})
ATTEMPT_STATES: Final = frozenset({CREATING, RUNNING})  # a current attempt exists

ROOT_JOB_GROUP_ID: Final = 0
MAX_JOB_GROUP_DEPTH: Final = 2  # Hail's MAX_JOB_GROUPS_DEPTH: the root is depth 0


class Update:
    """A batch update: a reserved, contiguous block of job ids and job-group ids."""

    __slots__ = (
        "update_id",
        "token",
        "start_job_id",
        "n_jobs",
        "start_job_group_id",
        "n_job_groups",
        "committed",
        "n_jobs_created",
        "n_job_groups_created",
    )

    def __init__(
        self,
        update_id: int,
        token: str,
        start_job_id: int,
        n_jobs: int,
        start_job_group_id: int,
        n_job_groups: int,
    ) -> None:
        self.update_id = update_id
        self.token = token
        self.start_job_id = start_job_id
        self.n_jobs = n_jobs
        self.start_job_group_id = start_job_group_id
        self.n_job_groups = n_job_groups
        self.committed = False
        self.n_jobs_created = 0
        self.n_job_groups_created = 0

    def job_ids(self) -> range:
        return range(self.start_job_id, self.start_job_id + self.n_jobs)

    def holds_job(self, job_id: int) -> bool:
        return self.start_job_id <= job_id < self.start_job_id + self.n_jobs

    def holds_job_group(self, job_group_id: int) -> bool:
        return self.start_job_group_id <= job_group_id < self.start_job_group_id + self.n_job_groups

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)


class JobGroup:
    """A job group and Hail's counters over the committed jobs of it and its descendants.

    Group 0 is the batch's root group: its counters are the batch's, and cancelling it is
    cancelling the batch.
    """

    __slots__ = (
        "job_group_id",
        "parent_id",
        "ancestors",
        "update_id",
        "cancel_after_n_failures",
        "cancel_requested",
        "cancelled",
        "n_jobs",
        "n_completed",
        "n_succeeded",
        "n_failed",
        "n_cancelled",
    )

    def __init__(
        self, job_group_id: int, parent: JobGroup | None, update_id: int, cancel_after_n_failures: int | None
    ) -> None:
        self.job_group_id = job_group_id
        self.parent_id = parent.job_group_id if parent else None
        # self first, root last: the groups whose counters a job of this group moves
        self.ancestors: tuple[int, ...] = (job_group_id, *(parent.ancestors if parent else ()))
        self.update_id = update_id
        self.cancel_after_n_failures = cancel_after_n_failures
        self.cancel_requested = False
        self.cancelled = False
        self.n_jobs = 0
        self.n_completed = 0
        self.n_succeeded = 0
        self.n_failed = 0  # Error + Failed, as Hail counts them
        self.n_cancelled = 0

    @property
    def depth(self) -> int:
        return len(self.ancestors) - 1

    @property
    def complete(self) -> bool:
        return self.n_completed == self.n_jobs

    @property
    def api_state(self) -> str:
        """Hail's derived state: failure, cancelled, success or running, in that order."""
        if self.n_failed > 0:
            return "failure"
        if self.cancelled or self.n_cancelled > 0:
            return "cancelled"
        if self.complete:
            return "success"
        return "running"

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)


class Attempt:
    """The current attempt of a job: where the scheduler placed it (an accepted SJ or JobCreating)."""

    __slots__ = (
        "attempt_id",
        "instance_name",
        "cores_mcpu",
        "memory_bytes",
        "storage_gib",
        "scheduled_event_id",
        "scheduled_at",
        "started_at",
    )

    def __init__(
        self,
        attempt_id: str,
        instance_name: str,
        cores_mcpu: int,
        memory_bytes: int,
        storage_gib: int,
        scheduled_event_id: str,
        scheduled_at: int,
    ) -> None:
        self.attempt_id = attempt_id
        self.instance_name = instance_name
        self.cores_mcpu = cores_mcpu
        self.memory_bytes = memory_bytes
        self.storage_gib = storage_gib
        self.scheduled_event_id = scheduled_event_id
        self.scheduled_at = scheduled_at
        self.started_at: int | None = None

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)


class Completion:
    """An accepted MJC for the current attempt, waiting for its verdict (JobCompleted or a retry)."""

    __slots__ = ("attempt_id", "outcome", "exit_code", "failure_cause", "ended_at", "event_id", "occurred_at")

    def __init__(
        self,
        attempt_id: str,
        outcome: str,
        exit_code: int | None,
        failure_cause: str | None,
        ended_at: int,
        event_id: str,
        occurred_at: int,
    ) -> None:
        self.attempt_id = attempt_id
        self.outcome = outcome
        self.exit_code = exit_code
        self.failure_cause = failure_cause
        self.ended_at = ended_at
        self.event_id = event_id
        self.occurred_at = occurred_at

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)


class Verdict:
    """The resolver's judgement of one scheduling decision, due to be published (JobAttemptAccepted, or
    JobAttemptRefused with `reason`) until it comes back from the log."""

    __slots__ = (
        "event_id",
        "job_id",
        "attempt_id",
        "instance_name",
        "asked",
        "epoch",
        "reason",
        "cores_mcpu",
        "memory_bytes",
        "storage_gib",
        "decision_event_id",
        "decided_at",
    )

    def __init__(
        self,
        event_id: str,
        job_id: int,
        attempt_id: str,
        instance_name: str,
        asked: str,
        epoch: int,
        reason: str | None,
        resources: tuple[int, int, int],
        decision_event_id: str,
        decided_at: int,
    ) -> None:
        self.event_id = event_id
        self.job_id = job_id
        self.attempt_id = attempt_id
        self.instance_name = instance_name
        self.asked = asked  # Creating | Running
        self.epoch = epoch
        self.reason = reason  # None: accepted
        self.cores_mcpu, self.memory_bytes, self.storage_gib = resources
        self.decision_event_id = decision_event_id
        self.decided_at = decided_at

    def snapshot(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)


class RetryOverrides:
    """What the job's retries changed (events/core/retries.py): the memory and preemptibility its next
    attempts ask for, and how often its attempts were preempted. None on a job until one matters."""

    __slots__ = ("memory_bytes", "non_preemptible", "n_preemptions")

    def __init__(self) -> None:
        self.memory_bytes: int | None = None  # None: the spec's
        self.non_preemptible = False
        self.n_preemptions = 0

    def snapshot(self) -> tuple[Any, ...]:
        return (self.memory_bytes, self.non_preemptible, self.n_preemptions)


class Job:
    """One job. `cause_id`/`cause_at` name the event that last moved it, so reactions carry the
    trigger's time and id (never a clock)."""

    __slots__ = (
        "job_id",
        "update_id",
        "job_group_id",
        "always_run",
        "n_max_attempts",
        "parent_ids",
        "children",
        "n_pending_parents",
        "parent_failed",
        "committed",
        "state",
        "spec",
        "attempt_ids",
        "attempt",
        "completion",
        "not_before",
        "exit_code",
        "retry_policy",
        "overrides",
        "cause_id",
        "cause_at",
    )

    def __init__(
        self,
        job_id: int,
        update_id: int,
        job_group_id: int,
        always_run: bool,
        n_max_attempts: int,
        parent_ids: tuple[int, ...],
        spec: JobSpec | None,
        cause_id: str,
        cause_at: int,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.job_id = job_id
        self.update_id = update_id
        self.job_group_id = job_group_id
        self.always_run = always_run
        self.n_max_attempts = n_max_attempts
        self.parent_ids = parent_ids  # until commit; then the edges live in the parents' `children`
        self.children: list[int] | None = None
        self.n_pending_parents = 0
        self.parent_failed = False  # a parent completed without succeeding
        self.committed = False
        self.state: str = PENDING
        self.spec = spec  # dropped once complete: only AttemptAssigned needs it
        self.attempt_ids: tuple[str, ...] = ()
        self.attempt: Attempt | None = None
        self.completion: Completion | None = None
        self.not_before: int | None = None
        self.exit_code: int | None = None
        self.retry_policy = retry_policy  # shared by the batch's jobs that have the same one
        self.overrides: RetryOverrides | None = None
        self.cause_id = cause_id
        self.cause_at = cause_at

    @property
    def complete(self) -> bool:
        return self.state in COMPLETE_STATES

    @property
    def n_attempts(self) -> int:
        return len(self.attempt_ids)

    @property
    def requested_memory_bytes(self) -> int:
        """The memory the job asks for now: what a retry policy raised it to, else its own request (0
        once its spec is dropped)."""
        if self.overrides is not None and self.overrides.memory_bytes is not None:
            return self.overrides.memory_bytes
        return self.spec.resources.memory_bytes if self.spec is not None else 0

    def snapshot(self) -> tuple[Any, ...]:
        """The facts about the job (not the bookkeeping of which event moved it last)."""
        return (
            self.job_id,
            self.update_id,
            self.job_group_id,
            self.always_run,
            self.n_max_attempts,
            self.parent_ids,
            tuple(self.children or ()),
            self.n_pending_parents,
            self.parent_failed,
            self.committed,
            self.state,
            self.attempt_ids,
            self.attempt.snapshot() if self.attempt else None,
            self.completion.snapshot() if self.completion else None,
            self.not_before,
            self.exit_code,
            self.retry_policy,
            self.overrides.snapshot() if self.overrides else None,
        )


class BatchState:
    """Everything the lifecycle knows about one batch."""

    __slots__ = (
        "batch_id",
        "user",
        "billing_project",
        "token",
        "created_at",
        "updates",
        "groups",
        "jobs",
        "deleted",
        "max_scheduler_epoch",
        "rejected_attempts",
        "verdicts_due",
        "new_verdicts",
        "specs",
        "any_group_cancelled",
        "completed_n_jobs",
        "n_committed_updates",
        "cause_id",
        "cause_at",
        "dirty_jobs",
        "dirty_groups",
        "dirty_batch",
    )

    def __init__(
        self,
        batch_id: int,
        user: str,
        billing_project: str,
        token: str,
        created_at: int,
        cancel_after_n_failures: int | None,
        cause_id: str,
    ) -> None:
        self.batch_id = batch_id
        self.user = user
        self.billing_project = billing_project
        self.token = token
        self.created_at = created_at
        self.updates: dict[int, Update] = {}
        root = JobGroup(ROOT_JOB_GROUP_ID, None, 0, cancel_after_n_failures)
        self.groups: dict[int, JobGroup] = {ROOT_JOB_GROUP_ID: root}
        self.jobs: dict[int, Job] = {}
        self.deleted = False
        self.max_scheduler_epoch = 0
        # the refused scheduling decisions (rare; events/core/decisions.py): a repeat must not count later
        self.rejected_attempts: set[DecisionKey] = set()
        # verdicts on scheduling decisions not yet back from the log, by event id (in decision order),
        # and those react has not derived yet
        self.verdicts_due: dict[str, Verdict] = {}
        self.new_verdicts: list[str] = []
        self.specs = SpecInterner()  # one copy of what the jobs' specs share
        self.any_group_cancelled = False
        self.completed_n_jobs: int | None = None  # n_jobs named by the last accepted BatchCompleted
        self.n_committed_updates = 0
        self.cause_id = cause_id
        self.cause_at = created_at
        self.dirty_jobs: set[int] = set()
        self.dirty_groups: set[int] = set()
        self.dirty_batch = True

    # --- Hail's batch counters and derived state (the root group's) ---
    @property
    def root(self) -> JobGroup:
        return self.groups[ROOT_JOB_GROUP_ID]

    @property
    def n_jobs(self) -> int:
        return self.root.n_jobs

    @property
    def n_completed(self) -> int:
        return self.root.n_completed

    @property
    def n_succeeded(self) -> int:
        return self.root.n_succeeded

    @property
    def n_failed(self) -> int:
        return self.root.n_failed

    @property
    def n_cancelled(self) -> int:
        return self.root.n_cancelled

    @property
    def cancel_requested(self) -> bool:
        return self.root.cancel_requested

    @property
    def cancelled(self) -> bool:
        return self.root.cancelled

    @property
    def closed(self) -> bool:
        """At least one update is committed (Hail's `closed`)."""
        return self.n_committed_updates > 0

    @property
    def complete(self) -> bool:
        return self.root.complete

    @property
    def api_state(self) -> str:
        return self.root.api_state

    # --- lookups the front end and the scheduler need ---
    def update_by_token(self, token: str) -> Update | None:
        for update in self.updates.values():
            if update.token == token:
                return update
        return None

    def next_job_id(self) -> int:
        """First job id not reserved by any update yet."""
        return 1 + sum(u.n_jobs for u in self.updates.values())

    def next_job_group_id(self) -> int:
        return 1 + sum(u.n_job_groups for u in self.updates.values())

    def is_job_cancelled(self, job: Job) -> bool:
        """Hail's is_job_cancelled: not always_run, and a parent did not succeed or any ancestor
        group (the batch included) is cancelled."""
        if job.always_run:
            return False
        return job.parent_failed or self.is_group_cancelled(job.job_group_id)

    def is_group_cancelled(self, job_group_id: int) -> bool:
        if not self.any_group_cancelled:  # the common case, asked on every SJ and reaction
            return False
        groups = self.groups
        return any(groups[g].cancelled for g in groups[job_group_id].ancestors)

    def clear_dirty(self) -> None:
        self.dirty_jobs.clear()
        self.dirty_groups.clear()
        self.dirty_batch = False
        self.new_verdicts.clear()

    def mark_all_dirty(self) -> None:
        """After rebuilding from the log: let react look at everything once."""
        self.dirty_jobs.update(j.job_id for j in self.jobs.values() if not j.complete)
        self.dirty_groups.update(self.groups)
        self.dirty_batch = True
        self.new_verdicts[:] = self.verdicts_due

    def snapshot(self) -> dict[str, Any]:
        """The facts, comparable with ==: equal snapshots mean equal lifecycles. Leaves out the
        bookkeeping: dirty marks, causes, the record of refused decisions (it only fences repeats) and
        the verdicts still to publish (they only say what the log has not brought back yet)."""
        return {
            "batch": (
                self.batch_id,
                self.user,
                self.billing_project,
                self.token,
                self.created_at,
                self.deleted,
                self.max_scheduler_epoch,
                self.completed_n_jobs,
                self.n_committed_updates,
            ),
            "updates": {k: u.snapshot() for k, u in self.updates.items()},
            "groups": {k: g.snapshot() for k, g in self.groups.items()},
            "jobs": {k: j.snapshot() for k, j in self.jobs.items()},
        }
