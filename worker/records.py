"""An attempt's logs, resource usage and status: spooled on this machine, shipped to squall's bucket.

Everything is written to a spool directory first (`<state>/spool/<key>`, keys as in
events/objectstore/layout.py), then shipped to the system bucket:
- a step's log is appended to its spool file as the container writes (the agent's HTTP endpoint
  serves a running step's log from there, worker/agent_http.py); new bytes are shipped as a chunk
  object at least every `flush_interval_s`, and the whole log as one object when the step ends;
- resource usage and the status document are shipped when a step ends (spooled only if that fails).
A ship that fails (store unreachable) leaves a spool file in place: `finish()` at the end of the
attempt ships whatever is still pending, the agent retries it until it succeeds (also after a
restart, from the spool), and only then removes the spool. Nothing already written is lost.

The file writes are small and local, so they happen on the event loop; every store call goes
through the ObjectStore, which keeps blocking I/O off the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.objectstore import ObjectStore, ObjectStoreError, StoreUnavailable
from events.objectstore import layout as keys

log = logging.getLogger("squall.worker.records")

FLUSH_INTERVAL_S = 5.0
MAX_CHUNK_BYTES = 8 << 20  # a job printing faster than this per flush is shipped in several chunks
SMALL_LOG_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class AttemptIds:
    batch_id: int
    job_id: int
    attempt_id: str

    @property
    def prefix(self) -> str:
        return keys.attempt_prefix(self.batch_id, self.job_id, self.attempt_id)


class AttemptRecords:
    def __init__(self, store: ObjectStore, bucket: str, spool_root: Path,
                 flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.store = store
        self.bucket = bucket
        self.spool_root = spool_root
        self.flush_interval_s = flush_interval_s
        self._shipped: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) of the spool file shipped

    def spool_path(self, key: str) -> Path:
        return self.spool_root / key

    # -- writing ---------------------------------------------------------------------------------
    def open_log(self, ids: AttemptIds, step: str) -> StepLog:
        """Start the step's log afresh (a re-attached step re-reads its container's whole output)."""
        return StepLog(self, ids, step)

    async def write_usage(self, ids: AttemptIds, step: str, data: bytes) -> None:
        await self._write_and_ship(keys.resource_usage_key(ids.batch_id, ids.job_id, ids.attempt_id, step), data)

    async def write_status(self, ids: AttemptIds, doc: dict[str, Any]) -> None:
        key = keys.status_key(ids.batch_id, ids.job_id, ids.attempt_id)
        await self._write_and_ship(key, json.dumps(doc).encode(), "application/json")

    async def _write_and_ship(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        try:
            await self.store.put(self.bucket, key, data, content_type)
            return  # shipped: no spool file needed (the common case costs no local I/O)
        except ObjectStoreError as exc:  # kept in the spool; finish() ships it
            log.warning("shipping %s failed, kept in the spool: %s", key, exc)
        path = self.spool_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def _mark_shipped(self, key: str, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            self._shipped[key] = (st.st_size, st.st_mtime_ns)

    def _is_shipped(self, key: str, path: Path) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            return True
        return self._shipped.get(key) == (st.st_size, st.st_mtime_ns)

    # -- shipping what is left ---------------------------------------------------------------------
    async def finish(self, ids: AttemptIds) -> bool:
        """Ship every spool file of the attempt not yet shipped; True when nothing is left to ship."""
        root = self.spool_path(ids.prefix)
        if not root.is_dir():
            return True
        ok = True
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
            key = path.relative_to(self.spool_root).as_posix()
            if self._is_shipped(key, path):
                continue
            try:
                if key.endswith("/log"):
                    await self._ship_whole_log(key, path, clear_chunks=True)
                else:
                    await self.store.put(self.bucket, key, path.read_bytes(), "application/json")
                    self._mark_shipped(key, path)
            except StoreUnavailable as exc:
                log.warning("shipping %s failed, retried later: %s", key, exc)
                return False  # the rest would wait out the same outage, one retry deadline each
            except ObjectStoreError as exc:
                log.warning("shipping %s failed, retried later: %s", key, exc)
                ok = False
        return ok

    async def _ship_whole_log(self, key: str, path: Path, clear_chunks: bool) -> None:
        small = _small_file(path)
        if small is not None:  # most logs: one put of the bytes is the cheapest request
            await self.store.put(self.bucket, key, small, "text/plain")
        else:
            await self.store.upload_file(self.bucket, key, path)  # streamed
        self._mark_shipped(key, path)
        if clear_chunks:  # readers prefer `log`; the chunks are now only clutter
            chunks_prefix = key[: -len("log")] + keys.LOG_CHUNKS
            for chunk in await self.store.list(self.bucket, chunks_prefix):
                await self.store.delete(self.bucket, chunk.key)

    def discard(self, ids: AttemptIds) -> None:
        """Remove the attempt's spool (call only once finish() returned True)."""
        root = self.spool_path(ids.prefix)
        for key in [k for k in self._shipped if k.startswith(ids.prefix)]:
            del self._shipped[key]
        shutil.rmtree(root, ignore_errors=True)
        for parent in (root.parent, root.parent.parent):  # the empty job and batch directories
            with contextlib.suppress(OSError):
                parent.rmdir()

    def spooled_attempts(self) -> list[AttemptIds]:
        """Attempts with a spool on this machine (after a restart: what may still need shipping)."""
        jobs = self.spool_root / keys.JOBS_PREFIX.rstrip("/")
        found = []
        for attempt_dir in sorted(jobs.glob("*/*/*")) if jobs.is_dir() else []:
            batch, job, attempt = attempt_dir.relative_to(jobs).parts
            if batch.isdigit() and job.isdigit() and attempt_dir.is_dir():
                found.append(AttemptIds(int(batch), int(job), attempt))
        return found

    # -- reading a running log ---------------------------------------------------------------------
    def read_spooled_log(self, ids: AttemptIds, step: str, start: int = 0,
                         tail_bytes: int | None = None) -> tuple[bytes, int] | None:
        """(bytes from `start`, or the last tail_bytes; the log's whole size) of the step's log on this
        machine, or None when this agent has no such log."""
        path = self.spool_path(keys.log_key(ids.batch_id, ids.job_id, ids.attempt_id, step))
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - tail_bytes) if tail_bytes is not None else min(max(0, start), size))
                return f.read(), size
        except FileNotFoundError:
            return None


class StepLog:
    """One step's log: appended to the spool file, shipped in chunks while open and whole at close."""

    def __init__(self, records: AttemptRecords, ids: AttemptIds, step: str) -> None:
        self._records = records
        self._ids = ids
        self._step = step
        self.key = keys.log_key(ids.batch_id, ids.job_id, ids.attempt_id, step)
        self.path = records.spool_path(self.key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._reopened = self.path.exists()  # a previous agent ran this step: it may have shipped chunks
        # long-lived (the step's whole run), closed by close(); unbuffered: each append is visible at once
        self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115
        self._written = 0
        self._shipped_upto = 0
        self._chunks_shipped = False
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    def append(self, data: bytes) -> None:
        if data and not self._closed:
            self._file.write(data)
            self._written += len(data)

    def start_flushing(self) -> None:
        """Ship new bytes at least every flush interval until close() (needs a running loop)."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"log-flush-{self.key}")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._records.flush_interval_s)
            await self.flush()

    async def flush(self) -> None:
        """Ship the bytes written since the last flush as chunk objects (kept for the next try on failure)."""
        while self._shipped_upto < self._written:
            start = self._shipped_upto
            data = await asyncio.to_thread(_read_range, self.path, start, min(MAX_CHUNK_BYTES, self._written - start))
            if not data:
                return
            key = keys.log_chunk_key(self._ids.batch_id, self._ids.job_id, self._ids.attempt_id, self._step, start)
            try:
                await self._records.store.put(self._records.bucket, key, data, "text/plain")
            except ObjectStoreError as exc:
                log.warning("shipping a chunk of %s failed, retried at the next flush: %s", self.key, exc)
                return
            self._chunks_shipped = True
            self._shipped_upto = start + len(data)

    def abandon(self) -> None:
        """Stop writing and flushing without shipping (the agent is stopping hard)."""
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
        self._file.close()

    async def close(self) -> None:
        """Stop flushing and ship the whole log (left in the spool for finish() if the store is down)."""
        if self._closed:
            return
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._file.close()
        try:
            # a log that shipped no chunk has none to clear (one list call saved per short step)
            await self._records._ship_whole_log(self.key, self.path,
                                                clear_chunks=self._chunks_shipped or self._reopened)
        except ObjectStoreError as exc:
            log.warning("shipping %s failed, kept in the spool: %s", self.key, exc)


def _read_range(path: Path, start: int, size: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(size)


def _small_file(path: Path) -> bytes | None:
    """The file's bytes if it is at most SMALL_LOG_BYTES (a bounded local read), else None."""
    with open(path, "rb") as f:
        data = f.read(SMALL_LOG_BYTES + 1)
    return data if len(data) <= SMALL_LOG_BYTES else None
