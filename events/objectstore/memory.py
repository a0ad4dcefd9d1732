"""An in-memory ObjectStore for unit tests (it passes the same contract suite as GcsObjectStore).

`outage = True` makes every call raise StoreUnavailable, as an unreachable store does, so tests
can drive the retry and "nothing already written is lost" paths without a network.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

from events.objectstore.errors import ObjectNotFound, StoreUnavailable
from events.objectstore.localfiles import open_regular_file, replacing
from events.objectstore.names import check_bucket_name, check_object_name
from events.objectstore.protocol import DEFAULT_CHUNK_BYTES, ObjectInfo

DEFAULT_LOCATION = "US-CENTRAL1"  # as fake-gcs-server and GCS itself default to


class InMemoryObjectStore:
    def __init__(self) -> None:
        self._buckets: dict[str, dict[str, tuple[bytes, int]]] = {}
        self._generations = itertools.count(1)
        self.outage = False
        self.locations: dict[str, str] = {}  # bucket -> location; unset: DEFAULT_LOCATION
        self.calls = 0  # every operation, for tests that count round trips

    def _enter(self) -> None:
        self.calls += 1
        if self.outage:
            raise StoreUnavailable("in-memory store: simulated outage")

    def _bucket(self, bucket: str) -> dict[str, tuple[bytes, int]]:
        try:
            return self._buckets[bucket]
        except KeyError:
            raise ObjectNotFound(f"gs://{bucket}: no such bucket") from None

    def _object(self, bucket: str, key: str) -> tuple[bytes, int]:
        check_object_name(key)
        try:
            return self._bucket(bucket)[key]
        except KeyError:
            raise ObjectNotFound(f"gs://{bucket}/{key}: no such object") from None

    async def create_bucket(self, bucket: str) -> None:
        self._enter()
        check_bucket_name(bucket)
        self._buckets.setdefault(bucket, {})

    async def bucket_location(self, bucket: str) -> str:
        self._enter()
        self._bucket(bucket)
        return self.locations.get(bucket, DEFAULT_LOCATION)

    async def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._enter()
        check_object_name(key)
        self._bucket(bucket)[key] = (bytes(data), next(self._generations))

    async def get(self, bucket: str, key: str) -> bytes:
        self._enter()
        return self._object(bucket, key)[0]

    async def get_range(self, bucket: str, key: str, start: int, end: int | None = None) -> bytes:
        self._enter()
        data = self._object(bucket, key)[0]
        if start < 0 and end is not None:
            raise ValueError("a negative start (a tail) takes no end")
        return data[start:end]  # a slice: clipped to the size, a negative start is a tail

    async def stream(self, bucket: str, key: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        self._enter()
        data = self._object(bucket, key)[0]
        for i in range(0, len(data), chunk_bytes):
            yield data[i:i + chunk_bytes]
            await asyncio.sleep(0)

    async def stat(self, bucket: str, key: str) -> ObjectInfo:
        self._enter()
        data, generation = self._object(bucket, key)
        return ObjectInfo(bucket, key, len(data), generation)

    async def exists(self, bucket: str, key: str) -> bool:
        self._enter()
        check_object_name(key)
        return key in self._buckets.get(bucket, {})

    async def list(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        self._enter()
        objects = self._bucket(bucket)
        return [ObjectInfo(bucket, k, len(v[0]), v[1]) for k, v in sorted(objects.items()) if k.startswith(prefix)]

    async def delete(self, bucket: str, key: str) -> None:
        self._enter()
        check_object_name(key)
        self._buckets.get(bucket, {}).pop(key, None)

    async def upload_file(self, bucket: str, key: str, path: Path) -> None:
        self._enter()
        with open_regular_file(path) as f:
            data = f.read()
        await self.put(bucket, key, data)

    async def download_file(self, bucket: str, key: str, path: Path) -> None:
        data = await self.get(bucket, key)
        with replacing(path) as tmp:
            tmp.write_bytes(data)

    async def close(self) -> None:
        pass
