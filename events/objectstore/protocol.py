"""The `ObjectStore` protocol: GCS-shaped buckets of immutable objects, used by the worker (job
files, logs, status) and by the services (reading logs, status and usage; bucket setup).

Every method is a coroutine (or an async iterator) and must not block the event loop: an adapter
over a blocking client runs its calls in threads. Keys are object names inside a bucket (GCS
rules: any UTF-8 but an empty name; "/" is only a character, "directories" are prefixes).

Semantics every adapter honours (tests/contract/test_object_store.py proves it against each):
- `put` replaces the whole object atomically: readers see the old or the new bytes, never a mix.
- `get_range(b, k, start, end)` is Python-slice-like: bytes [start, end) of the object, clipped to
  its size; a negative `start` with no `end` is the last `-start` bytes (a log's tail). A range
  past the end is b"", not an error.
- `list` returns the objects whose names start with `prefix`, sorted by name.
- `delete` of a missing object is not an error (deletes are retried and must be idempotent).
- A missing object raises ObjectNotFound; so does a missing bucket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    generation: int | None = None  # changes on every write (GCS's object generation)


@runtime_checkable
class ObjectStore(Protocol):
    async def create_bucket(self, bucket: str) -> None:
        """Create the bucket; an existing bucket is fine."""
        ...

    async def bucket_location(self, bucket: str) -> str:
        """The bucket's GCS location (`US-CENTRAL1`, `US`, `NAM4`, ...); a missing bucket raises ObjectNotFound."""
        ...

    async def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write the whole object (replacing any previous one)."""
        ...

    async def get(self, bucket: str, key: str) -> bytes:
        """The whole object."""
        ...

    async def get_range(self, bucket: str, key: str, start: int, end: int | None = None) -> bytes:
        """Bytes [start, end) of the object; start < 0 and end None: its last -start bytes."""
        ...

    def stream(self, bucket: str, key: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The object in chunks of at most chunk_bytes (for objects too big to hold in memory)."""
        ...

    async def stat(self, bucket: str, key: str) -> ObjectInfo:
        """Size and generation of the object."""
        ...

    async def exists(self, bucket: str, key: str) -> bool:
        ...

    async def list(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose names start with prefix, sorted by name."""
        ...

    async def delete(self, bucket: str, key: str) -> None:
        """Remove the object; a missing one is fine."""
        ...

    async def upload_file(self, bucket: str, key: str, path: Path) -> None:
        """Write the object from a local regular file (streamed; a symlink is refused with OSError)."""
        ...

    async def download_file(self, bucket: str, key: str, path: Path) -> None:
        """Write the object to a local file (streamed; path is replaced whole, never left half-written)."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
