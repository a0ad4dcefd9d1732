"""Copying a job's input_files into /io and its output_files out of it: gs:// objects only.

The input and output steps run in the agent (not in a copy container as Hail does). A URL names
one object or, when no such object exists (or it ends in '/'), every object under that prefix,
copied as a directory tree (Hail's copy semantics). Each copy runs as the submitting user:
`UserStores.for_user` gives the ObjectStore to use (real GCS: the user's own service-account key;
the embedded GCS-API server: the worker's client, the front end's bucket grants being the ACL).

Failures say what failed and carry the failure cause the attempt reports:
  input object/prefix missing -> input_not_found (the user's error: Failed, not retried)
  refused credentials, bad names, a missing output file -> input_failed / output_failed (Error)
  store unreachable or 5xx after the client's retries -> storage_unavailable (retried elsewhere)

Host paths are never a job's business: paths inside the container are mapped to the attempt's
/io directory and must stay inside it; symlinks a job plants there are never followed, neither
when writing inputs nor when reading outputs.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from events import failures
from events.objectstore import (
    AccessDenied,
    GsUrl,
    InvalidObjectName,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    StoreUnavailable,
    parse_gs_url,
)

IO_MOUNT = PurePosixPath("/io")
COPY_CONCURRENCY = 16


class StorageError(Exception):
    """A copy failed; the message names the file and the reason, `cause` the failure cause."""

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class UserStores(Protocol):
    async def for_user(self, user: str) -> ObjectStore:
        """The store to copy a user's files with (raises StorageError if the user cannot have one)."""
        ...


@dataclass
class SharedStore:
    """Every user's copies go through one client: the embedded GCS-API server, whose ACL is the
    front end's bucket grants (checked when the job was submitted)."""

    store: ObjectStore

    async def for_user(self, user: str) -> ObjectStore:
        return self.store


@dataclass(frozen=True)
class CopyReport:
    objects: int
    bytes: int


def host_path_in_io(io_dir: Path, container_path: str) -> Path:
    """Map a path the job names inside the container (/io/...) to the host, refusing escapes."""
    inside = PurePosixPath(container_path)
    if not inside.is_absolute():
        inside = IO_MOUNT / inside
    try:
        rel = inside.relative_to(IO_MOUNT)
    except ValueError:
        raise StorageError(f"{container_path}: files must be copied to or from /io", "") from None
    if ".." in rel.parts:
        raise StorageError(f"{container_path}: '..' is not allowed", "")
    host = io_dir / rel
    _check_inside(io_dir, host, container_path)
    return host


def _check_inside(io_dir: Path, host: Path, shown: str) -> None:
    real_root = os.path.realpath(io_dir)
    real = os.path.realpath(host)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise StorageError(f"{shown}: resolves outside /io", "")


def _relative_parts(name: str, shown: str) -> tuple[str, ...]:
    """An object name below a prefix as path parts; names that would climb out are refused."""
    parts = tuple(p for p in name.split("/") if p)
    if not parts or any(p in (".", "..") for p in parts):
        raise StorageError(f"{shown}: object name {name!r} cannot be a path under /io", "")
    return parts


class JobFiles:
    def __init__(self, stores: UserStores, concurrency: int = COPY_CONCURRENCY) -> None:
        self.stores = stores
        self.concurrency = concurrency

    async def download(self, user: str, url: str, dst: Path, io_dir: Path) -> CopyReport:
        """Copy the object (or every object under the prefix) at url to dst (inside io_dir)."""
        cause = failures.INPUT_FAILED
        try:
            src = parse_gs_url(url)
            store = await self.stores.for_user(user)
            if not src.is_prefix:
                _prepare_parent(io_dir, dst, url)
                try:
                    await store.download_file(src.bucket, src.key, dst)
                    return CopyReport(1, _size(dst))
                except ObjectNotFound:
                    pass  # maybe a "directory": the objects under key/
            prefix = src if src.is_prefix else GsUrl(src.bucket, src.key + "/")
            objects = [o for o in await store.list(prefix.bucket, prefix.key) if not o.key.endswith("/")]
            if not objects:
                raise StorageError(f"input {url} not found", failures.INPUT_NOT_FOUND)
            targets = []
            for o in objects:
                target = dst.joinpath(*_relative_parts(o.key[len(prefix.key):], url))
                targets.append((o.key, target))
            sem = asyncio.Semaphore(self.concurrency)

            async def one(key: str, target: Path) -> None:
                async with sem:
                    _prepare_parent(io_dir, target, url)
                    await store.download_file(prefix.bucket, key, target)

            await _all(one(k, t) for k, t in targets)
            return CopyReport(len(objects), sum(o.size for o in objects))
        except ObjectNotFound as exc:
            raise StorageError(f"input {url} not found ({exc})", failures.INPUT_NOT_FOUND) from exc
        except StorageError as exc:
            if not exc.cause:
                exc.cause = cause
            raise
        except (ObjectStoreError, OSError) as exc:
            raise _classified(f"input {url}", exc, cause) from exc

    async def upload(self, user: str, src: Path, url: str, io_dir: Path, shown: str) -> CopyReport:
        """Copy the regular file or directory tree src (inside io_dir) to url."""
        cause = failures.OUTPUT_FAILED
        try:
            dst = parse_gs_url(url)
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                raise StorageError(f"output {shown} does not exist in /io", cause) from None
            store = await self.stores.for_user(user)
            if stat.S_ISREG(st.st_mode):
                target = dst.child(src.name) if dst.is_prefix else dst
                await store.upload_file(target.bucket, target.key, src)
                return CopyReport(1, st.st_size)
            if not stat.S_ISDIR(st.st_mode):
                raise StorageError(f"output {shown} is not a regular file or directory (symlinks are not "
                                   "copied)", cause)
            files = _walk_regular_files(src, shown)
            sem = asyncio.Semaphore(self.concurrency)

            async def one(path: Path, rel: str) -> None:
                async with sem:
                    target = dst.child(rel)
                    await store.upload_file(target.bucket, target.key, path)

            await _all(one(p, rel) for p, rel, _ in files)
            return CopyReport(len(files), sum(size for _, _, size in files))
        except StorageError as exc:
            if not exc.cause:
                exc.cause = cause
            raise
        except (ObjectStoreError, OSError) as exc:
            raise _classified(f"output {shown} -> {url}", exc, cause) from exc


def _size(path: Path) -> int:
    return os.stat(path).st_size


def _prepare_parent(io_dir: Path, target: Path, shown: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(io_dir, target.parent, shown)  # a symlinked directory must not carry the write outside
    if os.path.islink(target):
        raise StorageError(f"{shown}: {target.name} is a symlink in /io; not overwritten", "")


def _walk_regular_files(root: Path, shown: str) -> list[tuple[Path, str, int]]:
    """(path, name relative to root with '/', size) of every regular file; any symlink is an error."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                raise StorageError(f"output {shown}: {rel} is a symlink; squall copies only regular files", "")
            if stat.S_ISREG(st.st_mode):
                out.append((path, rel, st.st_size))
    return sorted(out, key=lambda t: t[1])


async def _all(coros: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the copies together; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _classified(what: str, exc: ObjectStoreError | OSError, cause: str) -> StorageError:
    if isinstance(exc, StoreUnavailable):
        return StorageError(f"{what}: the object store is unavailable: {exc}", failures.STORAGE_UNAVAILABLE)
    if isinstance(exc, AccessDenied):
        return StorageError(f"{what}: access denied: {exc}", cause)
    if isinstance(exc, InvalidObjectName):
        return StorageError(f"{what}: {exc}", cause)
    if isinstance(exc, ObjectStoreError):
        return StorageError(f"{what}: {exc}", cause)
    return StorageError(f"{what}: {exc.strerror or exc}", cause)
