"""Where an attempt's logs and resource-usage samples live in the blob store, and how to read them.

The worker owns the layout (`worker/blobs.py`: `log_path(root, batch_id, job_id, attempt_id, step)`
and `resource_usage_path(...)`). Until that module exists the UI uses Hail's layout,
`{root}/{batch}/{job}/{attempt}/{step}/log` and `.../resource_usage`, which the worker is expected
to keep. The resource-usage file is Hail's v2 binary format (see `decode_resource_usage`).
"""

from __future__ import annotations

import importlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STEPS = ("input", "main", "output")

# A page shows at most this much of a log; the raw endpoint serves the rest.
LOG_TAIL_BYTES = 256 * 1024

PathFunction = Callable[[Path, int, int, str, str], Path]


def _hail_layout(filename: str) -> PathFunction:
    def path(root: Path, batch_id: int, job_id: int, attempt_id: str, step: str) -> Path:
        return Path(root) / str(batch_id) / str(job_id) / attempt_id / step / filename
    return path


def _worker_helper(name: str, fallback: PathFunction) -> PathFunction:
    """The worker's own path function when it is installed, so the UI follows its layout."""
    try:
        module = importlib.import_module("worker.blobs")
    except ImportError:
        return fallback
    return getattr(module, name, fallback)


log_path: PathFunction = _worker_helper("log_path", _hail_layout("log"))
resource_usage_path: PathFunction = _worker_helper("resource_usage_path", _hail_layout("resource_usage"))


def _check_step(step: str) -> None:
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}: one of {', '.join(STEPS)}")


@dataclass(frozen=True)
class LogText:
    text: str
    size: int        # bytes in the whole file
    truncated: bool  # only the tail is in `text`


def read_log(root: Path, batch_id: int, job_id: int, attempt_id: str, step: str,
             tail_bytes: int | None = LOG_TAIL_BYTES) -> LogText | None:
    """The step's log (its last `tail_bytes`), or None when the step wrote none."""
    _check_step(step)
    path = log_path(root, batch_id, job_id, attempt_id, step)
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            start = 0 if tail_bytes is None else max(0, size - tail_bytes)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return None
    # A tail may start inside a multi-byte character; replace rather than fail the page.
    return LogText(text=data.decode("utf-8", errors="replace"), size=size, truncated=start > 0)


@dataclass(frozen=True)
class UsageSample:
    time_ms: int
    memory_bytes: int
    cpu_cores: float       # Hail records cpu as a percentage of one core; here already divided by 100
    storage_bytes: int     # non-io + io scratch
    upload_bytes_per_s: float
    download_bytes_per_s: float


_HEADER = struct.Struct(">q")
_RECORD = struct.Struct(">qqdqqdd")  # time_msecs, memory, cpu, non_io_storage, io_storage, up_Bps, down_Bps


class UsageFormatError(ValueError):
    """The resource-usage file is not in a version this UI reads."""


def decode_resource_usage(data: bytes) -> list[UsageSample]:
    """Hail's resource-usage v2: an 8-byte big-endian version (2), then fixed 56-byte records."""
    if not data:
        return []
    if len(data) < _HEADER.size:
        raise UsageFormatError("resource-usage file shorter than its version header")
    (version,) = _HEADER.unpack_from(data)
    if version != 2:
        raise UsageFormatError(f"resource-usage version {version} is not supported (expected 2)")
    body = memoryview(data)[_HEADER.size:]
    whole = len(body) - len(body) % _RECORD.size  # a record being written has not landed yet
    return [
        UsageSample(time_ms=t, memory_bytes=mem, cpu_cores=cpu / 100.0, storage_bytes=non_io + io,
                    upload_bytes_per_s=up, download_bytes_per_s=down)
        for t, mem, cpu, non_io, io, up, down in _RECORD.iter_unpack(body[:whole])
    ]


def encode_resource_usage(samples: list[UsageSample]) -> bytes:
    """The inverse of `decode_resource_usage` (non-io storage carries the whole storage figure)."""
    records = [_RECORD.pack(s.time_ms, s.memory_bytes, s.cpu_cores * 100.0, s.storage_bytes, 0,
                            s.upload_bytes_per_s, s.download_bytes_per_s) for s in samples]
    return _HEADER.pack(2) + b"".join(records)


def read_resource_usage(root: Path, batch_id: int, job_id: int, attempt_id: str,
                        step: str) -> list[UsageSample] | None:
    """The step's samples, or None when it recorded none."""
    _check_step(step)
    try:
        data = resource_usage_path(root, batch_id, job_id, attempt_id, step).read_bytes()
    except FileNotFoundError:
        return None
    return decode_resource_usage(data)
