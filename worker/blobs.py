"""Where job logs, status documents and resource usage go: a BlobStore, and the layout inside it.

Layout (Hail's, under the blob root; the local default root is ServiceConfig.blob_root,
i.e. <home>/blobs):

    <root>/<batch_id>/<job_id>/<attempt_id>/status.json            worker status document (HAIL-REFERENCE §1.4)
    <root>/<batch_id>/<job_id>/<attempt_id>/<step>/log             raw stdout+stderr of the step (input|main|output)
    <root>/<batch_id>/<job_id>/<attempt_id>/<step>/resource_usage  JSON time series (see worker/usage.py)

The path functions are pure and are what the front end imports to serve logs: a step's log grows
while the step runs (appended and flushed as the container writes), so reading it mid-run gives
the output so far. It is absent until the step starts, and steps that never started have none.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Protocol

STEPS = ("input", "main", "output")


def attempt_key(batch_id: int, job_id: int, attempt_id: str) -> PurePosixPath:
    if not attempt_id or "/" in attempt_id or attempt_id in (".", ".."):
        raise ValueError(f"attempt_id {attempt_id!r} cannot be used in a blob path")
    return PurePosixPath(str(int(batch_id)), str(int(job_id)), attempt_id)


def _step_key(batch_id: int, job_id: int, attempt_id: str, step: str) -> PurePosixPath:
    if step not in STEPS:
        raise ValueError(f"step must be one of {STEPS}, not {step!r}")
    return attempt_key(batch_id, job_id, attempt_id) / step


def log_key(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    return str(_step_key(batch_id, job_id, attempt_id, step) / "log")


def resource_usage_key(batch_id: int, job_id: int, attempt_id: str, step: str) -> str:
    return str(_step_key(batch_id, job_id, attempt_id, step) / "resource_usage")


def status_key(batch_id: int, job_id: int, attempt_id: str) -> str:
    return str(attempt_key(batch_id, job_id, attempt_id) / "status.json")


def log_path(root: str | Path, batch_id: int, job_id: int, attempt_id: str, step: str) -> Path:
    """The local file holding a step's log (readable while the step runs)."""
    return Path(root) / log_key(batch_id, job_id, attempt_id, step)


def resource_usage_path(root: str | Path, batch_id: int, job_id: int, attempt_id: str, step: str) -> Path:
    return Path(root) / resource_usage_key(batch_id, job_id, attempt_id, step)


def status_path(root: str | Path, batch_id: int, job_id: int, attempt_id: str) -> Path:
    return Path(root) / status_key(batch_id, job_id, attempt_id)


class BlobAppender(Protocol):
    def append(self, data: bytes) -> None:
        """Add bytes at the end; visible to readers once this returns."""
        ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    """Keys are the relative posix paths built by the *_key functions above."""

    def put(self, key: str, data: bytes) -> None:
        """Replace the blob atomically (readers see the old or the new content, never a mix)."""
        ...

    def get(self, key: str) -> bytes:
        """The blob's content; raises FileNotFoundError if absent."""
        ...

    def appender(self, key: str) -> BlobAppender:
        """Start the blob afresh and append to it (live logs)."""
        ...


class _FileAppender:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # long-lived (the step's whole run), closed by close(); unbuffered: each append is visible at once
        self._file = open(path, "wb", buffering=0)  # noqa: SIM115

    def append(self, data: bytes) -> None:
        self._file.write(data)

    def close(self) -> None:
        self._file.close()


class LocalBlobStore:
    """A directory on this machine (the default); a gs:// store would implement the same Protocol."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        rel = PurePosixPath(key)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"blob key {key!r} must be a relative path without '..'")
        return self.root / rel

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def appender(self, key: str) -> BlobAppender:
        return _FileAppender(self._path(key))
