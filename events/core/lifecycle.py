"""The job/batch lifecycle, as pure functions over a batch's state (Hail Batch's rules).

    state = evolve(state, event)        # apply any batch-topic event (idempotent; stale ones are no-ops)
    events = react(state, producer)     # derived events the state calls for (ready, cancelled, completed...)
    events = decide(state, command)     # a front-end command -> events, or a LifecycleError

One `BatchState` per batch (None before its BatchCreated). The pieces live in sibling modules:
state.py (what is known), evolve.py (the fold and its fences), react.py (derivations),
decide.py + commands.py (the front end's commands), backoff.py (retry delays), errors.py.
"""

from __future__ import annotations

from events.core.backoff import retry_delay_ms, retry_not_before
from events.core.commands import (
    AddJobGroups,
    AddJobs,
    CancelBatch,
    CancelJobGroup,
    Command,
    CommitUpdate,
    CreateBatch,
    CreateUpdate,
    DeleteBatch,
    JobDraft,
    JobGroupDraft,
)
from events.core.decide import decide
from events.core.errors import (
    BatchAlreadyExists,
    BatchIsCancelled,
    BatchNotFound,
    InvalidJob,
    InvalidJobGroup,
    InvalidUpdate,
    JobGroupNotFound,
    LifecycleError,
    NotFound,
    Rejected,
    UpdateAlreadyCommitted,
    UpdateNotFound,
    WrongNumberOfJobGroups,
    WrongNumberOfJobs,
)
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
    "AddJobGroups", "AddJobs", "Attempt", "BATCH_LIFECYCLE_EVENTS", "BatchAlreadyExists", "BatchIsCancelled",
    "BatchNotFound", "BatchState", "CANCELLED", "COMPLETE_STATES", "CREATING", "CancelBatch", "CancelJobGroup",
    "Command", "CommitUpdate", "Completion", "CreateBatch", "CreateUpdate", "DeleteBatch", "ERROR", "FAILED",
    "InvalidJob", "InvalidJobGroup", "InvalidUpdate", "JOB_STATES", "Job", "JobDraft", "JobGroup",
    "JobGroupDraft", "JobGroupNotFound", "LifecycleError", "MAX_JOB_GROUP_DEPTH", "NotFound", "PARENTS_COMPLETE",
    "PENDING", "READY", "RETRY", "ROOT_JOB_GROUP_ID", "RUNNING", "Rejected", "SUCCESS", "Update",
    "UpdateAlreadyCommitted", "UpdateNotFound", "WrongNumberOfJobGroups", "WrongNumberOfJobs", "decide",
    "evolve", "fold", "new_batch", "react", "retry_delay_ms", "retry_not_before",
]
