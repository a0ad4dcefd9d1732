"""An attempt's logs and resource-usage samples for the job page, read through services/jobdata:
squall's bucket via the ObjectStore, and a running attempt's log from its worker's endpoint.

The layout is events/objectstore/layout.py (Hail's `<batch>/<job>/<attempt>/<step>/log` and
`.../resource_usage`, under jobs/ in squall's bucket); its key functions validate the attempt id
and step, so nothing from a query string can name another object. While a step runs, its log is
read from its worker, so the page shows the output so far. Resource usage is the worker's JSON
time series (worker/usage.py's format).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from events.objectstore.layout import STEPS
from services.jobdata import AttemptLocation, JobData

__all__ = ["STEPS", "LOG_TAIL_BYTES", "LogText", "read_log", "UsageSample", "UsageFormatError",
           "decode_resource_usage", "read_resource_usage"]

# A page shows at most this much of a log; the raw endpoint serves the rest.
LOG_TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class LogText:
    text: str
    size: int        # bytes in the whole file
    truncated: bool  # only the tail is in `text`


async def read_log(data: JobData, batch_id: int, job_id: int, attempt_id: str, step: str,
                   tail_bytes: int | None = LOG_TAIL_BYTES, where: AttemptLocation | None = None) -> LogText | None:
    """The step's log (its last `tail_bytes`), or None when the step wrote none."""
    log = await data.log(batch_id, job_id, attempt_id, step, where, tail_bytes)
    if log is None:
        return None
    # A tail may start inside a multi-byte character; replace rather than fail the page.
    return LogText(text=log.data.decode("utf-8", errors="replace"), size=log.size, truncated=log.truncated)


@dataclass(frozen=True)
class UsageSample:
    time_ms: int
    memory_bytes: int
    cpu_cores: float
    storage_bytes: int


class UsageFormatError(ValueError):
    """The resource-usage blob is not the worker's time series; the message says what is wrong."""


# worker/usage.py's columns (Hail's names), and the sample field each one fills
_COLUMNS = {"time_msecs": "time_ms", "memory_in_bytes": "memory_bytes", "cpu_usage": "cpu_cores",
            "io_storage_in_bytes": "storage_bytes"}


def decode_resource_usage(data: bytes) -> list[UsageSample]:
    """The worker's pandas-"split" JSON: {"columns": [...], "index": [...], "data": [[...], ...]}.

    Columns are found by name, so added columns do not break the page; a missing one reads as 0
    except time, which a plot cannot do without.
    """
    try:
        doc = json.loads(data)
        columns = list(doc["columns"])
        rows = doc["data"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageFormatError(f"resource usage is not a split-orientation JSON table: {exc}") from exc
    if "time_msecs" not in columns:
        raise UsageFormatError(f"resource usage has no time_msecs column (columns: {columns})")
    where = {field: columns.index(name) for name, field in _COLUMNS.items() if name in columns}
    samples = []
    for n, row in enumerate(rows):
        try:
            values = {field: row[i] for field, i in where.items()}
            samples.append(UsageSample(time_ms=int(values["time_ms"]),
                                       memory_bytes=int(values.get("memory_bytes", 0)),
                                       cpu_cores=float(values.get("cpu_cores", 0.0)),
                                       storage_bytes=int(values.get("storage_bytes", 0))))
        except (IndexError, TypeError, ValueError) as exc:
            raise UsageFormatError(f"resource usage row {n} does not fit the columns {columns}: {exc}") from exc
    return samples


async def read_resource_usage(data: JobData, batch_id: int, job_id: int, attempt_id: str,
                              step: str) -> list[UsageSample] | None:
    """The step's samples, or None when it recorded none."""
    raw = await data.resource_usage(batch_id, job_id, attempt_id, step)
    return None if raw is None else decode_resource_usage(raw)
