"""What follows a failed attempt: a retry, and with what resources, or nothing (the job ends).

Hail's one rule: a system failure (instance lost, worker crashed, ...) with attempts left is retried
with backoff; a user failure (non-zero exit, out of memory) is final. A job's retry policy
(`RetryPolicy`, from its spec or its batch's default) adds three rules, each a decision the resolver
publishes as the retry's JobBecameReady (`retry_rule`, with the next attempts' `memory_bytes` and
`preemptible` when they change):

- `oom_memory_multiplier`: an attempt killed for memory is retried at once with its memory times the
  multiplier, up to `oom_max_memory_bytes`; one killed at the cap is final (Failed);
- `retry_exit_codes`: a main step that exits with a listed code is retried with backoff, like a
  system failure;
- `max_preemptions`: once the job's attempts were preempted that many times, the retry and every
  later attempt run on non-preemptible instances (only real preemptions count: cause `preempted`,
  never an instance that merely went silent).

Every retry counts against `n_max_attempts`; out of attempts, a policy's failure stays what it was
(Failed), a system failure becomes Error (`too_many_attempts`). A cancelled job is never retried.
Pure: the decision is a function of the job's state and the completion, so a re-derivation after a
crash decides the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from events.catalog import RetryPolicy
from events.core.backoff import retry_not_before
from events.core.state import FAILED, Completion, Job
from events.failures import NONZERO_EXIT, OUT_OF_MEMORY, PREEMPTED, is_system_failure

SYSTEM_FAILURE: Final = "system_failure"  # Hail's rule
OOM_MEMORY_MULTIPLIER: Final = "oom_memory_multiplier"
RETRY_EXIT_CODES: Final = "retry_exit_codes"
MAX_PREEMPTIONS: Final = "max_preemptions"
RULES: Final = (SYSTEM_FAILURE, OOM_MEMORY_MULTIPLIER, RETRY_EXIT_CODES, MAX_PREEMPTIONS)


@dataclass(frozen=True, slots=True)
class Retry:
    """A decided retry: the rule that decided it, when the next attempt may start, and what the job's
    next attempts ask for where the policy changed it (None: as the spec says)."""

    rule: str
    not_before: int | None
    memory_bytes: int | None
    preemptible: bool | None  # False: non-preemptible instances only


def decide_retry(job: Job, done: Completion, cancelled: bool) -> Retry | None:
    """The retry that follows the job's accepted completion `done`, or None when the job ends with it."""
    if done.outcome == "Success" or cancelled or job.n_attempts >= job.n_max_attempts:
        return None
    policy = job.retry_policy
    if is_system_failure(done.failure_cause):
        preemptions = job.overrides.n_preemptions if job.overrides else 0
        fall_back = (done.failure_cause == PREEMPTED and policy is not None and policy.max_preemptions is not None
                     and preemptions >= policy.max_preemptions and not _non_preemptible(job))
        return _retry(job, done, MAX_PREEMPTIONS if fall_back else SYSTEM_FAILURE, backoff=True,
                      non_preemptible=fall_back)
    if policy is None or done.outcome != FAILED:
        return None
    if done.failure_cause == OUT_OF_MEMORY and policy.oom_memory_multiplier is not None:
        more = oom_retry_memory(policy, _attempt_memory(job))
        if more is not None:  # retry at once: more memory is the fix, waiting is not
            return _retry(job, done, OOM_MEMORY_MULTIPLIER, backoff=False, memory_bytes=more)
    if (done.failure_cause in (NONZERO_EXIT, OUT_OF_MEMORY) and done.exit_code is not None
            and done.exit_code in policy.retry_exit_codes):
        return _retry(job, done, RETRY_EXIT_CODES, backoff=True)
    return None


def oom_retry_memory(policy: RetryPolicy, memory_bytes: int) -> int | None:
    """The memory after an out-of-memory kill at `memory_bytes`: times the multiplier, capped; None
    when the cap leaves no more to give."""
    assert policy.oom_memory_multiplier is not None
    more = math.ceil(memory_bytes * policy.oom_memory_multiplier)
    if policy.oom_max_memory_bytes is not None:
        more = min(more, policy.oom_max_memory_bytes)
    return more if more > memory_bytes else None


def _retry(job: Job, done: Completion, rule: str, *, backoff: bool, memory_bytes: int | None = None,
           non_preemptible: bool = False) -> Retry:
    overrides = job.overrides
    memory = memory_bytes if memory_bytes is not None else (overrides.memory_bytes if overrides else None)
    preemptible = False if non_preemptible or _non_preemptible(job) else None
    not_before = retry_not_before(done.ended_at, job.n_attempts, done.attempt_id) if backoff else None
    return Retry(rule, not_before, memory, preemptible)


def _attempt_memory(job: Job) -> int:
    """The memory the failed attempt had (its placement's), else what the job asks for now."""
    if job.attempt is not None and job.attempt.memory_bytes > 0:
        return job.attempt.memory_bytes
    return job.requested_memory_bytes


def _non_preemptible(job: Job) -> bool:
    return job.overrides is not None and job.overrides.non_preemptible


def describe_retry(rule: str, cause: str | None, *, exit_code: int | None = None, memory_bytes: int | None = None,
                   previous_memory_bytes: int | None = None, preemptible: bool | None = None) -> str:
    """The decision in words, for `squall audit`, `why` and the UI."""
    if rule == OOM_MEMORY_MULTIPLIER:
        before = f" at {_size(previous_memory_bytes)}" if previous_memory_bytes else ""
        after = f" with {_size(memory_bytes)}" if memory_bytes else " with more memory"
        return f"out of memory{before}: retried at once{after} (retry_policy.oom_memory_multiplier)"
    if rule == RETRY_EXIT_CODES:
        return f"exit code {exit_code} is listed in retry_policy.retry_exit_codes: retried with backoff"
    if rule == MAX_PREEMPTIONS:
        return "preempted once too often (retry_policy.max_preemptions): retried on a non-preemptible instance"
    where = ", on a non-preemptible instance" if preemptible is False else ""
    return f"{(cause or 'system failure').replace('_', ' ')} (the system's fault): retried with backoff{where}"


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
