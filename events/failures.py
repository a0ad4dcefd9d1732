"""Failure cause codes carried in `JobAttemptCompleted.failure_cause`, and which are the system's fault.

Workers and the driver report causes; the core decides: a system failure with attempts left returns
the job to Ready for a new attempt (with backoff); a user failure or a non-retryable error is final,
unless the job's retry policy says otherwise (events/core/retries.py: out of memory, listed exit codes).
"""

from __future__ import annotations

from typing import Final

# the user's process: outcome Failed, never retried
NONZERO_EXIT: Final = "nonzero_exit"
# exit 137 with the OOM flag; the user's failure (Hail: Failed), retried with more memory only under a retry policy
OUT_OF_MEMORY: Final = "out_of_memory"
INPUT_NOT_FOUND: Final = "input_not_found"  # an input_files gs:// object (or prefix) does not exist

# the job cannot run as specified: outcome Error, never retried
TIMED_OUT: Final = "timed_out"
IMAGE_NOT_FOUND: Final = "image_not_found"
STORAGE_QUOTA_EXCEEDED: Final = "storage_quota_exceeded"
INPUT_FAILED: Final = "input_failed"
OUTPUT_FAILED: Final = "output_failed"
TOO_MANY_ATTEMPTS: Final = "too_many_attempts"
INVALID_JOB: Final = "invalid_job"
# the runtime refused the job's own spec: its executable is not in the image, its working directory
# or user does not exist, ... (the runtime's message is the error)
CONTAINER_SPEC_INVALID: Final = "container_spec_invalid"
# the image reference is malformed ("repository name must be lowercase", "invalid reference format")
INVALID_IMAGE_REFERENCE: Final = "invalid_image_reference"

# cancellation: outcome Cancelled
KILLED: Final = "killed"  # the worker killed a running attempt
# the attempt never ran: its job was cancelled while its job-private instance was being created, so
# the driver ends the attempt itself (Hail's canceller: Creating -> MJC Cancelled, attempt reason `cancelled`)
CANCELLED_WHILE_CREATING: Final = "cancelled"

# the system's fault: outcome Error, retried with a new attempt while attempts remain
INSTANCE_LOST: Final = "instance_lost"
# the provider reclaimed the preemptible instance (its own word: the cloud's preemption notice, the
# local provider's simulated one), as opposed to an instance that merely went silent (instance_lost)
PREEMPTED: Final = "preempted"
WORKER_CRASHED: Final = "worker_crashed"
IMAGE_PULL_FAILED: Final = "image_pull_failed"  # transient registry/network trouble
INTERNAL_ERROR: Final = "internal_error"
# the object store was unreachable or answered 429/5xx past the copy's own retries (job files only:
# a missing object is input_not_found, refused credentials input_failed / output_failed)
STORAGE_UNAVAILABLE: Final = "storage_unavailable"

SYSTEM_FAILURES: Final = frozenset({INSTANCE_LOST, PREEMPTED, WORKER_CRASHED, IMAGE_PULL_FAILED, INTERNAL_ERROR,
                                    STORAGE_UNAVAILABLE})

# what the API shows as the error's short form, Hail's wording where Hail has one
SHORT_ERRORS: Final = {
    TIMED_OUT: "timed out",
    IMAGE_NOT_FOUND: "image not found",
    INVALID_IMAGE_REFERENCE: "invalid image reference",
    CONTAINER_SPEC_INVALID: "container could not start",
    OUT_OF_MEMORY: "out of memory",
    STORAGE_QUOTA_EXCEEDED: "storage quota exceeded",
    TOO_MANY_ATTEMPTS: "too many attempts",
    INSTANCE_LOST: "instance lost",
    PREEMPTED: "preempted",
    WORKER_CRASHED: "worker crashed",
    INPUT_NOT_FOUND: "input not found",
    STORAGE_UNAVAILABLE: "storage unavailable",
}


def is_system_failure(cause: str | None) -> bool:
    return cause in SYSTEM_FAILURES
