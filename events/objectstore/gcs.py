"""GcsObjectStore: the ObjectStore on google-cloud-storage, for real GCS and for any GCS-API server.

    GcsObjectStore()                                        # real GCS, application-default credentials
    GcsObjectStore(credentials=service_account_creds)       # real GCS as a given identity (a user's key)
    GcsObjectStore(endpoint="http://127.0.0.1:PORT")        # a GCS-API server (fake-gcs-server), anonymous

google-cloud-storage is blocking, so every call runs in this store's own thread pool (not the
event loop's default executor, which a burst of 1,000 small copies would starve) and the
connection pool is sized to match. The library's own retry (exponential backoff on 429/5xx and
connection errors) is bounded by `retry_deadline_s`; what still fails is StoreUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import storage  # type: ignore[attr-defined]  # a namespace package mypy misreads
from google.cloud.storage.retry import DEFAULT_RETRY

from events.objectstore.errors import AccessDenied, ObjectNotFound, ObjectStoreError, StoreUnavailable
from events.objectstore.localfiles import open_regular_file, replacing
from events.objectstore.names import check_bucket_name, check_object_name
from events.objectstore.protocol import DEFAULT_CHUNK_BYTES, ObjectInfo

T = TypeVar("T")
DEFAULT_THREADS = 32
EMULATOR_PROJECT = "squall-local"  # a GCS-API server wants some project id for bucket creation


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn the library's exceptions into the ObjectStore error tree, naming `what` failed."""
    try:
        yield
    except ObjectStoreError:
        raise
    except api_exceptions.NotFound as exc:
        raise ObjectNotFound(f"{what}: not found") from exc
    except (api_exceptions.Forbidden, api_exceptions.Unauthorized) as exc:
        raise AccessDenied(f"{what}: access denied ({exc.message})") from exc
    except api_exceptions.TooManyRequests as exc:
        raise StoreUnavailable(f"{what}: the store is throttling (429): {exc.message}") from exc
    except api_exceptions.ServerError as exc:
        raise StoreUnavailable(f"{what}: the store failed ({exc.code}): {exc.message}") from exc
    except api_exceptions.RetryError as exc:
        raise StoreUnavailable(f"{what}: gave up retrying: {exc.cause or exc}") from exc
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError,
            auth_exceptions.TransportError) as exc:
        raise StoreUnavailable(f"{what}: the store is unreachable: {exc}") from exc
    except api_exceptions.GoogleAPICallError as exc:
        if exc.code is not None and exc.code >= 500:
            raise StoreUnavailable(f"{what}: the store failed ({exc.code}): {exc.message}") from exc
        raise ObjectStoreError(f"{what}: {exc.code} {exc.message}") from exc
    except auth_exceptions.DefaultCredentialsError as exc:
        raise AccessDenied(f"{what}: no credentials: {exc}") from exc
    except auth_exceptions.RefreshError as exc:
        raise AccessDenied(f"{what}: the credentials were refused: {exc}") from exc


class GcsObjectStore:
    def __init__(self, endpoint: str | None = None, credentials: Credentials | None = None,
                 project: str | None = None, *, threads: int = DEFAULT_THREADS, timeout_s: float = 60.0,
                 retry_deadline_s: float = 30.0) -> None:
        self.endpoint = endpoint
        self._timeout = timeout_s
        self._retry = DEFAULT_RETRY.with_deadline(retry_deadline_s) if retry_deadline_s > 0 else None
        self._call_timeout = timeout_s + retry_deadline_s + 30.0
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gcs")
        self._credentials = credentials
        self._project = project
        self._client: storage.Client | None = None
        # a thread lock, not an asyncio one: a store may be used from more than one event loop
        self._client_lock = threading.Lock()

    def _make_client(self) -> storage.Client:
        options: dict[str, Any] = {}
        credentials = self._credentials
        project = self._project
        if self.endpoint is not None:
            options["client_options"] = {"api_endpoint": self.endpoint.rstrip("/")}
            credentials = credentials or AnonymousCredentials()  # type: ignore[no-untyped-call]
            project = project or EMULATOR_PROJECT
        with _mapped("connecting to the object store"):
            client = storage.Client(project=project, credentials=credentials, **options)
            # one connection per worker thread, or urllib3 drops and re-opens them under load
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=self._threads)
            client._http.mount("http://", adapter)
            client._http.mount("https://", adapter)
            if not urllib.request.getproxies():
                # no proxy configured: stop requests from re-reading the environment (and ~/.netrc)
                # on every request, which was a third of the CPU of a small upload
                client._http.trust_env = False
        return client

    def _ensure_client(self) -> storage.Client:
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    async def _call(self, fn: Callable[..., T], *args: Any, bounded: bool = True) -> T:
        def run() -> T:
            self._ensure_client()  # built in the pool: creating a client may read credentials from disk
            return fn(*args)
        future = asyncio.get_running_loop().run_in_executor(self._executor, run)
        if not bounded:  # whole-file transfers take as long as their size needs
            return await future
        try:
            # the library bounds each request and its retries; this bounds the caller even if a
            # thread never comes back, so an agent is never stuck behind one call
            return await asyncio.wait_for(future, self._call_timeout)
        except TimeoutError:
            raise StoreUnavailable(f"the object store did not answer within {self._call_timeout:.0f} s") from None

    def _blob(self, bucket: str, key: str) -> storage.Blob:
        assert self._client is not None
        return self._client.bucket(bucket).blob(check_object_name(key))

    def _retry_kw(self) -> dict[str, Any]:
        return {"timeout": self._timeout, "retry": self._retry}

    # -- operations (each a blocking function run in the pool) ----------------------------------
    async def create_bucket(self, bucket: str) -> None:
        check_bucket_name(bucket)

        def create() -> None:
            assert self._client is not None
            with _mapped(f"creating gs://{bucket}"):
                try:
                    self._client.create_bucket(bucket, timeout=self._timeout, retry=self._retry)
                except api_exceptions.Conflict:
                    pass  # it exists (ours, or for real GCS possibly someone else's: a later write says)
        await self._call(create)

    async def bucket_location(self, bucket: str) -> str:
        check_bucket_name(bucket)

        def location() -> str:
            assert self._client is not None
            with _mapped(f"reading the location of gs://{bucket}"):
                found = self._client.get_bucket(bucket, timeout=self._timeout, retry=self._retry)
                return str(found.location or "")
        return await self._call(location)

    async def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        def put() -> None:
            with _mapped(f"writing gs://{bucket}/{key}"):
                # an unconditional overwrite of the same bytes is idempotent, so retrying it is safe
                self._blob(bucket, key).upload_from_string(data, content_type=content_type, **self._retry_kw())
        await self._call(put)

    async def get(self, bucket: str, key: str) -> bytes:
        def get() -> bytes:
            with _mapped(f"reading gs://{bucket}/{key}"):
                return bytes(self._blob(bucket, key).download_as_bytes(**self._retry_kw()))
        return await self._call(get)

    async def get_range(self, bucket: str, key: str, start: int, end: int | None = None) -> bytes:
        if start < 0 and end is not None:
            raise ValueError("a negative start (a tail) takes no end")
        if end is not None and end <= start:
            await self.stat(bucket, key)  # still ObjectNotFound for a missing object
            return b""

        def get_range() -> bytes:
            with _mapped(f"reading gs://{bucket}/{key}"):
                try:
                    # the library's `end` is inclusive; ours is exclusive, like a slice
                    return bytes(self._blob(bucket, key).download_as_bytes(
                        start=start, end=None if end is None else end - 1, checksum=None, **self._retry_kw()))
                except api_exceptions.RequestRangeNotSatisfiable:
                    return b""  # starts past the end (or the object is empty)
        return await self._call(get_range)

    async def stream(self, bucket: str, key: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> AsyncIterator[bytes]:
        size = (await self.stat(bucket, key)).size
        offset = 0
        while offset < size:
            chunk = await self.get_range(bucket, key, offset, min(size, offset + chunk_bytes))
            if not chunk:
                break  # replaced by a shorter object while we read
            offset += len(chunk)
            yield chunk

    async def stat(self, bucket: str, key: str) -> ObjectInfo:
        def stat() -> ObjectInfo:
            assert self._client is not None
            with _mapped(f"reading gs://{bucket}/{key}"):
                blob = self._client.bucket(bucket).get_blob(check_object_name(key), **self._retry_kw())
            if blob is None:
                raise ObjectNotFound(f"reading gs://{bucket}/{key}: not found")
            return ObjectInfo(bucket, key, int(blob.size or 0), blob.generation)
        return await self._call(stat)

    async def exists(self, bucket: str, key: str) -> bool:
        def exists() -> bool:
            with _mapped(f"checking gs://{bucket}/{key}"):
                return bool(self._blob(bucket, key).exists(**self._retry_kw()))
        return await self._call(exists)

    async def list(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        def list_() -> list[ObjectInfo]:
            assert self._client is not None
            with _mapped(f"listing gs://{bucket}/{prefix}"):
                blobs = self._client.list_blobs(bucket, prefix=prefix or None, **self._retry_kw())
                out = [ObjectInfo(bucket, b.name, int(b.size or 0), b.generation) for b in blobs]
            return sorted(out, key=lambda o: o.key)
        return await self._call(list_)

    async def delete(self, bucket: str, key: str) -> None:
        def delete() -> None:
            with _mapped(f"deleting gs://{bucket}/{key}"):
                try:
                    self._blob(bucket, key).delete(**self._retry_kw())
                except api_exceptions.NotFound:
                    pass
        await self._call(delete)

    async def upload_file(self, bucket: str, key: str, path: Path) -> None:
        def upload() -> None:
            with open_regular_file(path) as f, _mapped(f"writing gs://{bucket}/{key}"):
                # with its size known the library sends a small file in one request (multipart),
                # and only a big one as a resumable upload
                size = os.fstat(f.fileno()).st_size
                self._blob(bucket, key).upload_from_file(f, rewind=True, size=size, **self._retry_kw())
        await self._call(upload, bounded=False)

    async def download_file(self, bucket: str, key: str, path: Path) -> None:
        def download() -> None:
            with replacing(path) as tmp, _mapped(f"reading gs://{bucket}/{key}"), open(tmp, "wb") as f:
                self._blob(bucket, key).download_to_file(f, **self._retry_kw())
        await self._call(download, bounded=False)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

