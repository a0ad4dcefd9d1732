"""Reading a step's log back from the system bucket, whichever way the worker left it.

A finished step has one `log` object. A step still running (or whose worker died mid-step) has
only the chunks shipped so far under `log.chunks/`, each named by where it starts in the log;
they are put back together in order, overlaps (a restarted worker re-shipping) dropped, and the
read stops at a gap rather than join text that does not follow. See events/objectstore/layout.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from events.objectstore.errors import ObjectNotFound
from events.objectstore.layout import chunk_offset, log_chunks_prefix, log_key
from events.objectstore.protocol import ObjectInfo, ObjectStore


@dataclass(frozen=True, slots=True)
class LogRead:
    data: bytes
    size: int        # bytes in the whole log as far as the store knows it
    complete: bool   # read from the finished step's `log` object (False: the chunks shipped so far)

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size


async def read_step_log(store: ObjectStore, bucket: str, batch_id: int, job_id: int, attempt_id: str, step: str,
                        tail_bytes: int | None = None) -> LogRead | None:
    """The step's log (only its last tail_bytes if given), or None when the store has none."""
    key = log_key(batch_id, job_id, attempt_id, step)
    for _ in range(2):  # the worker may finish the log between our two looks: look at `log` again
        whole = await _read_object(store, bucket, key, tail_bytes)
        if whole is not None:
            return whole
        chunks = await store.list(bucket, log_chunks_prefix(batch_id, job_id, attempt_id, step))
        if chunks:
            return await _read_chunks(store, bucket, chunks, tail_bytes)
    return None


async def _read_object(store: ObjectStore, bucket: str, key: str, tail_bytes: int | None) -> LogRead | None:
    try:
        if tail_bytes is None:
            data = await store.get(bucket, key)
            return LogRead(data, len(data), True)
        size = (await store.stat(bucket, key)).size
        data = await store.get_range(bucket, key, max(0, size - tail_bytes), size)
        return LogRead(data, size, True)
    except ObjectNotFound:
        return None


async def _read_chunks(store: ObjectStore, bucket: str, listed: list[ObjectInfo],
                       tail_bytes: int | None) -> LogRead | None:
    chunks = sorted((off, c) for c in listed if (off := chunk_offset(c.key)) is not None)
    # the contiguous run from offset 0: a gap means a chunk is missing, and text after it would lie
    run: list[tuple[int, ObjectInfo]] = []
    end = 0
    for off, c in chunks:
        if off > end:
            break
        if off + c.size > end:
            run.append((off, c))
            end = off + c.size
    if not run:
        return None
    start = 0 if tail_bytes is None else max(0, end - tail_bytes)
    out = bytearray()
    for off, c in run:
        if off + c.size <= start:
            continue
        try:
            data = await store.get(bucket, c.key)
        except ObjectNotFound:  # deleted because the whole log was just written: the caller looks again
            return None
        pos = start + len(out)  # where in the log the text assembled so far ends
        out += data[pos - off:]
    return LogRead(bytes(out), end, False)
