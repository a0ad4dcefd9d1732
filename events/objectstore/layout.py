"""Where squall keeps what its workers write, inside squall's own bucket (the "system bucket",
which no job may name):

    jobs/<batch>/<job>/<attempt>/status.json               the worker's status document (Hail's format)
    jobs/<batch>/<job>/<attempt>/<step>/log                 a finished step's whole log (stdout+stderr)
    jobs/<batch>/<job>/<attempt>/<step>/log.chunks/<offset> a running step's log, shipped every few
                                                            seconds; <offset> (15 digits) is where the
                                                            chunk starts in the log. Deleted once `log` exists.
    jobs/<batch>/<job>/<attempt>/<step>/resource_usage      the step's usage time series (JSON)
    instances/<name>/agent-secret                           the secret the front end shows the worker's
                                                            HTTP endpoint to read live logs
    users/<user>/gcs-key.json                               the user's service-account key (real GCS only)

Steps are Hail's: input, main, output. The functions are pure and validate what they put in a
name, so an attempt id or step from a request can never name another object.
"""

from __future__ import annotations

import re

STEPS = ("input", "main", "output")
JOBS_PREFIX = "jobs/"
LOG_CHUNKS = "log.chunks/"
CHUNK_OFFSET_DIGITS = 15
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def _safe(kind: str, value: str) -> str:
    if not _SAFE.match(value) or value in (".", ".."):
        raise ValueError(f"{kind} {value!r} cannot be used in an object name")
    return value


def attempt_prefix(batch_id: int, job_id: int, attempt_id: str) -> str:
    return f"{JOBS_PREFIX}{int(batch_id)}/{int(job_id)}/{_safe('attempt_id', attempt_id)}/"


def _step_prefix(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, not {step!r}")
    return f"{attempt_prefix(batch_id, job_id, attempt_id)}{step}/"


def log_key(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    return _step_prefix(batch_id, job_id, attempt_id, step) + "log"


def log_chunks_prefix(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    return _step_prefix(batch_id, job_id, attempt_id, step) + LOG_CHUNKS


def log_chunk_key(batch_id: int, job_id: int, attempt_id: str, step: str, offset: int) -> str:
    return f"{log_chunks_prefix(batch_id, job_id, attempt_id, step)}{offset:0{CHUNK_OFFSET_DIGITS}d}"


def chunk_offset(key: str) -> int | None:
    """Where the chunk named `key` starts in its log; None for a name that is not a chunk."""
    tail = key.rsplit("/", 1)[-1]
    return int(tail) if len(tail) == CHUNK_OFFSET_DIGITS and tail.isdigit() else None


def resource_usage_key(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    return _step_prefix(batch_id, job_id, attempt_id, step) + "resource_usage"


def status_key(batch_id: int, job_id: int, attempt_id: str) -> str:
    return attempt_prefix(batch_id, job_id, attempt_id) + "status.json"


def agent_secret_key(instance_name: str) -> str:
    return f"instances/{_safe('instance name', instance_name)}/agent-secret"


def user_key_key(user: str) -> str:
    return f"users/{_safe('user', user)}/gcs-key.json"
