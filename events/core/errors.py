"""Errors `decide` raises when a command breaks a rule of the job/batch lifecycle.

Two kinds, so the front end can map them without reading messages: `NotFound` (HTTP 404: the
batch, update, job or group does not exist) and `Rejected` (HTTP 400: the request is invalid or
not allowed now). Messages follow Hail's wording where Hail has one, and say what to fix.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every error `events.core.decide` raises."""


class NotFound(LifecycleError):
    """Something the command names does not exist."""


class BatchNotFound(NotFound):
    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        super().__init__(f"batch {batch_id} not found")


class UpdateNotFound(NotFound):
    def __init__(self, batch_id: int, update_id: int) -> None:
        self.batch_id, self.update_id = batch_id, update_id
        super().__init__(f"update {update_id} of batch {batch_id} not found")


class JobGroupNotFound(NotFound):
    def __init__(self, batch_id: int, job_group_id: int) -> None:
        self.batch_id, self.job_group_id = batch_id, job_group_id
        super().__init__(f"job group {job_group_id} of batch {batch_id} not found")


class Rejected(LifecycleError):
    """The command is invalid, or not allowed in the batch's current state."""


class BatchAlreadyExists(Rejected):
    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id
        super().__init__(f"batch {batch_id} already exists (with a different token); allocate a new batch id")


class BatchIsCancelled(Rejected):
    def __init__(self, batch_id: int, action: str) -> None:
        self.batch_id = batch_id
        super().__init__(f"batch {batch_id} is cancelled: cannot {action}")


class UpdateAlreadyCommitted(Rejected):
    def __init__(self, batch_id: int, update_id: int) -> None:
        super().__init__(
            f"update {update_id} of batch {batch_id} is already committed: "
            "create a new update to add jobs or job groups"
        )


class WrongNumberOfJobs(Rejected):
    """Commit with fewer (or more) jobs than the update reserved. Hail's message, word for word."""

    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"wrong number of jobs: expected {expected}, actual {actual}")


class WrongNumberOfJobGroups(Rejected):
    def __init__(self, expected: int, actual: int) -> None:
        self.expected, self.actual = expected, actual
        super().__init__(f"wrong number of job groups: expected {expected}, actual {actual}")


class InvalidJob(Rejected):
    """A job spec is inconsistent with the update (ids, parents, group)."""

    def __init__(self, job_id: int, problem: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id}: {problem}")


class InvalidJobGroup(Rejected):
    """A job-group spec is inconsistent with the update (ids, parent, depth)."""

    def __init__(self, job_group_id: int, problem: str) -> None:
        self.job_group_id = job_group_id
        super().__init__(f"job group {job_group_id}: {problem}")


class InvalidUpdate(Rejected):
    """An update's counts are invalid."""
