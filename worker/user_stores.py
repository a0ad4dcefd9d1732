"""Real GCS: each user's job files are copied with that user's own service-account key.

`squall user set-credentials USER KEYFILE` stores the key in the front end's tables, and the front
end publishes it to squall's own bucket (`users/<user>/gcs-key.json`, events/objectstore/layout.py)
before it accepts that user's jobs. Assignments carry only the user's name: the worker resolves it
to the key object with its own identity, which needs read access to that one prefix of squall's
bucket and no access to users' buckets. The key never travels through Kafka or a log line.
Keys are cached for `ttl_s`, so a rotated key takes effect within that time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from events import failures
from events.objectstore import ObjectNotFound, ObjectStore, ObjectStoreError, StoreUnavailable
from events.objectstore.layout import user_key_key
from worker.storage import StorageError

GCS_SCOPES = ("https://www.googleapis.com/auth/devstorage.read_write",)


@dataclass
class _Cached:
    digest: str
    store: ObjectStore
    loaded_at: float


class PerUserGcsStores:
    def __init__(self, system: ObjectStore, bucket: str, ttl_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.system = system
        self.bucket = bucket
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[str, _Cached] = {}

    async def for_user(self, user: str) -> ObjectStore:
        cached = self._cache.get(user)
        if cached is not None and self.clock() - cached.loaded_at < self.ttl_s:
            return cached.store
        try:
            data = await self.system.get(self.bucket, user_key_key(user))
        except ObjectNotFound:
            raise StorageError(f"user {user} has no GCS credentials on file: an operator runs "
                               f"`squall user set-credentials {user} KEYFILE`", "") from None
        except StoreUnavailable as exc:
            raise StorageError(f"reading the credentials of user {user}: {exc}",
                               failures.STORAGE_UNAVAILABLE) from exc
        except ObjectStoreError as exc:
            raise StorageError(f"reading the credentials of user {user}: {exc}", "") from exc
        digest = hashlib.sha256(data).hexdigest()
        if cached is not None and cached.digest == digest:
            cached.loaded_at = self.clock()
            return cached.store
        store = _store_for_key(user, data)
        self._cache[user] = _Cached(digest, store, self.clock())
        # the previous store may still serve copies in flight: it is left to the garbage collector
        return store

    async def close(self) -> None:
        for cached in self._cache.values():
            await cached.store.close()
        self._cache.clear()


def _store_for_key(user: str, data: bytes) -> ObjectStore:
    from google.oauth2 import service_account

    from events.objectstore.gcs import GcsObjectStore

    try:
        info = json.loads(data)
        credentials = service_account.Credentials.from_service_account_info(info, scopes=list(GCS_SCOPES))
    except (ValueError, KeyError, TypeError) as exc:  # never echo the key itself
        raise StorageError(f"the GCS credentials on file for user {user} are not a service-account key "
                           f"({type(exc).__name__}); set them again with `squall user set-credentials`", "") from None
    return GcsObjectStore(credentials=credentials, project=info.get("project_id"))
