"""The job/batch lifecycle, as pure functions over a batch's state (Hail Batch's rules).

    state = evolve(state, event)        # apply any batch-topic event (idempotent; stale ones are no-ops)
    events = react(state, producer)     # derived events the state calls for (ready, cancelled, completed...)

One `BatchState` per batch (None before its BatchCreated). The pieces live in sibling modules:
state.py (what is known), evolve.py (the fold and its fences), react.py (derivations),
backoff.py (retry delays). The events a user's request makes come from one place, the front's
planner (services/front/update_plan.py); tests/unit/core/test_lifecycle_front_planner.py folds them here.
"""

from __future__ import annotations

from events.core.backoff import retry_delay_ms, retry_not_before
from events.core.evolve import BATCH_LIFECYCLE_EVENTS, PARENTS_COMPLETE, RETRY, evolve, fold, new_batch
from events.core.react import react
from events.core.state import (
    CANCELLED,
    COMPLETE_STATES,
    CREATING,
    ERROR,
    FAILED,
    JOB_STATES,
    MAX_JOB_GROUP_DEPTH,
    PENDING,
    READY,
    ROOT_JOB_GROUP_ID,
    RUNNING,
    SUCCESS,
    Attempt,
    BatchState,
    Completion,
    Job,
    JobGroup,
    Update,
)

__all__ = [
    "Attempt", "BATCH_LIFECYCLE_EVENTS", "BatchState", "CANCELLED", "COMPLETE_STATES", "CREATING", "Completion",
    "ERROR", "FAILED", "JOB_STATES", "Job", "JobGroup", "MAX_JOB_GROUP_DEPTH", "PARENTS_COMPLETE", "PENDING",
    "READY", "RETRY", "ROOT_JOB_GROUP_ID", "RUNNING", "SUCCESS", "Update", "evolve", "fold", "new_batch", "react",
    "retry_delay_ms", "retry_not_before",
]
