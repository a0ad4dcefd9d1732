"""The local stack's object store: the embedded GCS-API server, or an endpoint, or real GCS.

    squall up                                   fake-gcs-server under $SQUALL_HOME/storage (the default)
    squall up --storage-endpoint URL            a GCS-API server already running at URL
    squall up --storage gcs --system-bucket B --bucket D
                                                real GCS, application-default credentials

`squall up` makes squall's own bucket (logs, status, usage: `system_bucket`) and the default
user's bucket, grants the latter to the default user, and on a $SQUALL_HOME from before the
object store uploads the logs under $SQUALL_HOME/blobs into squall's bucket, then renames that
directory to blobs.migrated (see `migrate_local_blobs`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("squall.stack")

STORAGE_DIR = "storage"
LEGACY_BLOBS_DIR = "blobs"
MIGRATED_BLOBS_DIR = "blobs.migrated"
DEFAULT_SYSTEM_BUCKET = "squall-system"
DEFAULT_DATA_BUCKET = "squall-data"
_ATTEMPT = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_FILES = {"status.json"} | {f"{step}/{name}" for step in ("input", "main", "output")
                            for name in ("log", "resource_usage")}


class StorageSetupError(RuntimeError):
    """The object store could not be set up; the message says what to do."""


def _server(home: Path, host: str | None = None):  # type: ignore[no-untyped-def]
    from deploy.objectstore import FakeGcsServer

    return FakeGcsServer(home / STORAGE_DIR, host=host)


def resolve(home: Path, *, mode: str, endpoint: str | None, previous: Any,
            host: str | None = None) -> tuple[str | None, bool]:
    """(endpoint, embedded) for this `squall up`; starts the embedded server when that is the choice,
    listening on `host` (default: loopback, or where it listened before)."""
    if mode not in ("embedded", "gcs"):
        raise StorageSetupError(f"--storage must be embedded or gcs, not {mode!r}")
    if endpoint is None and mode == "embedded" and previous is not None and not getattr(previous, "embedded_storage",
                                                                                         True):
        endpoint = previous.storage_endpoint  # keep what the stack was set up with
        if endpoint is None:
            return None, False
    if endpoint is not None:
        return endpoint.rstrip("/"), False
    if mode == "gcs":
        return None, False
    from deploy.objectstore import ObjectStoreDeployError

    try:
        return _server(home, host).start(), True
    except ObjectStoreDeployError as exc:
        raise StorageSetupError(str(exc)) from exc


def stop_embedded(home: Path, say: Callable[[str], None]) -> None:
    server = _server(home)
    if server.is_running():
        server.stop()
        say("stopped storage")


def embedded_status(home: Path) -> dict[str, object]:
    server = _server(home)
    return {"pid": server.pid(), "healthy": server.is_running(), "endpoint": server.endpoint}


def prepare(endpoint: str | None, *, system_bucket: str, bucket: str) -> None:
    """Create squall's bucket and the user's bucket (`squall up`'s StackUser grants the latter)."""
    asyncio.run(_prepare(endpoint, system_bucket, bucket))


async def _prepare(endpoint: str | None, system_bucket: str, bucket: str) -> None:
    from events.objectstore import ObjectStoreError
    from events.objectstore.gcs import GcsObjectStore

    store = GcsObjectStore(endpoint=endpoint, retry_deadline_s=10)
    try:
        for name in (system_bucket, bucket):
            await store.create_bucket(name)
    except ObjectStoreError as exc:
        where = endpoint or "GCS (application-default credentials)"
        raise StorageSetupError(f"creating buckets {system_bucket} and {bucket} in {where} failed: {exc}") from exc
    finally:
        await store.close()


def migrate_local_blobs(home: Path, endpoint: str | None, system_bucket: str,
                        say: Callable[[str], None]) -> int:
    """Upload $SQUALL_HOME/blobs (logs, status, usage of stacks from before the object store) into
    squall's bucket under the same layout, then rename the directory to blobs.migrated. Returns how
    many files were uploaded. Safe to interrupt: the next `squall up` uploads again and renames."""
    root = home / LEGACY_BLOBS_DIR
    if not root.is_dir():
        return 0
    files = list(_legacy_files(root))
    n = asyncio.run(_upload(files, endpoint, system_bucket))
    target = home / MIGRATED_BLOBS_DIR
    if target.exists():
        target = home / f"{MIGRATED_BLOBS_DIR}.{os.getpid()}"
    root.rename(target)
    say(f"migrated    {n} log/status/usage files from {root} into gs://{system_bucket}/jobs/ (old copy: {target})")
    return n


def _legacy_files(root: Path) -> list[tuple[Path, str]]:
    """(file, object name) for every file of the old layout <batch>/<job>/<attempt>/<file>."""
    from events.objectstore.layout import attempt_prefix

    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        parts = path.relative_to(root).parts
        if len(parts) < 4 or not parts[0].isdigit() or not parts[1].isdigit() or not _ATTEMPT.match(parts[2]):
            log.warning("not migrating %s: not in the old blob layout", path)
            continue
        rest = "/".join(parts[3:])
        if rest not in _FILES:
            log.warning("not migrating %s: not a log, status or usage file", path)
            continue
        found.append((path, attempt_prefix(int(parts[0]), int(parts[1]), parts[2]) + rest))
    return found


async def _upload(files: list[tuple[Path, str]], endpoint: str | None, bucket: str) -> int:
    from events.objectstore.gcs import GcsObjectStore

    store = GcsObjectStore(endpoint=endpoint)
    sem = asyncio.Semaphore(16)

    async def one(path: Path, key: str) -> None:
        async with sem:
            await store.upload_file(bucket, key, path)

    try:
        await asyncio.gather(*(one(p, k) for p, k in files))
    finally:
        await store.close()
    return len(files)
