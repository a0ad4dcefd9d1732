"""Whether a scheduling decision counts: the one rule, and how to tell a new decision from a repeat.

A scheduling decision is a JobCreating (a fresh attempt waits for a job-private instance) or an SJ
(a fresh attempt placed on an instance, or a Creating attempt placed on its job-private instance
once that booted). Many schedulers may decide about one job: a deposed leader, two leaders racing,
a scheduler that has not yet seen the job's cancellation. The log's order settles it: the resolver
judges every decision where it lands, with `refusal` over the lifecycle state (events/core/evolve),
and publishes the verdict, JobAttemptAccepted or JobAttemptRefused with the reason. Every other
fold that follows placements (the read model, the scheduler's view) takes the verdict and never
judges a decision itself.

A repeat of a decision (a re-delivery, or a decision appended twice) gets no verdict of its own: it
was judged already. `is_repeat` tells repeats apart from facts a fold that follows the verdicts has
as well as the core (the job's attempts, the refused decisions, the attempt still waiting for its
instance), so every fold agrees on which decisions are still to be judged.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Final

# what a decision asks for: the job state it would put the job in
CREATING: Final = "Creating"
RUNNING: Final = "Running"

# why a decision is refused (JobAttemptRefused.reason)
DEPOSED: Final = "deposed"  # an older leader epoch than one the batch has seen
CANCELLED: Final = "cancelled"  # the job is cancelled (Hail's SJ refuses a cancelled job)
NOT_WAITING: Final = "not_waiting"  # the job was not waiting for this attempt: not Ready, or a race lost

DecisionKey = tuple[int, str, str, int]
"""(job_id, attempt_id, asked state, scheduler epoch): what identifies one decision."""


def decision_key(job_id: int, attempt_id: str, asked: str, epoch: int) -> DecisionKey:
    return (job_id, attempt_id, asked, epoch)


def is_repeat(key: DecisionKey, known_attempts: Container[str], refused: Container[DecisionKey],
              waiting_attempt: str | None) -> bool:
    """True if the decision was judged already: it was refused, or its attempt was accepted and this
    is not the boot of that attempt while it still waits for its job-private instance.

    `known_attempts`: the job's accepted attempts; `refused`: the refused decisions;
    `waiting_attempt`: the job's Creating attempt while it waits (not ended), else None."""
    if key in refused:
        return True
    _, attempt_id, asked, _ = key
    if attempt_id not in known_attempts:
        return False  # a fresh attempt: a new decision
    return not (asked == RUNNING and attempt_id == waiting_attempt)


def refusal(*, epoch: int, newest_epoch: int, cancelled: bool, fresh_and_ready: bool, boots_waiting: bool) -> str | None:
    """Why a new decision does not count, or None when it does (the resolver's judgement).

    `newest_epoch`: the newest leader epoch of the decisions the batch accepted or judged so far;
    `cancelled`: the job is cancelled (Hail's is_job_cancelled); `fresh_and_ready`: the decision
    places a fresh attempt and the job is Ready; `boots_waiting`: an SJ for the job's Creating
    attempt while it still waits for its instance."""
    if epoch < newest_epoch:
        return DEPOSED
    if cancelled:
        return CANCELLED
    if fresh_and_ready or boots_waiting:
        return None
    return NOT_WAITING
