"""Copying a job's input_files into /io and its output_files out of it, by URL scheme.

The input and output steps run in the agent (not in a copy container as Hail does): files move
between a URL and the attempt's /io directory on this host. Each scheme is an ObjectStorage;
`file://` and plain absolute paths are LocalStorage. A gs:// adapter plugs in with
`StorageRouter({"gs": GcsStorage(...)})`; unknown schemes fail the step with a clear message.

Paths inside the container are mapped to the host /io directory and must stay inside it; a
symlink planted by the job cannot make the output step read or write outside /io.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlparse

IO_MOUNT = PurePosixPath("/io")


class StorageError(Exception):
    """A copy failed; the message names the file and the reason."""


class ObjectStorage(Protocol):
    def download(self, url: str, dst: Path) -> None:
        """Copy the object (or directory) at url to the local path dst."""
        ...

    def upload(self, src: Path, url: str) -> None:
        """Copy the local file or directory src to url."""
        ...


def local_path_of(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StorageError(f"{url}: file:// URLs must name a local path (file:///path)")
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and url.startswith("/"):
        return Path(url)
    raise StorageError(f"{url}: not a local path or file:// URL")


class LocalStorage:
    """file:// URLs and absolute paths on this machine (the local stack's "bucket")."""

    def download(self, url: str, dst: Path) -> None:
        _copy(local_path_of(url), dst)

    def upload(self, src: Path, url: str) -> None:
        _copy(src, local_path_of(url))


def _copy(src: Path, dst: Path) -> None:
    if not os.path.lexists(src):
        raise StorageError(f"{src}: no such file or directory")
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)  # symlinks copied, not followed
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
    except OSError as exc:
        raise StorageError(f"copying {src} to {dst}: {exc.strerror or exc}") from exc


class StorageRouter:
    """Dispatch by URL scheme ('' and 'file' go to LocalStorage unless overridden)."""

    def __init__(self, by_scheme: Mapping[str, ObjectStorage] | None = None) -> None:
        local = LocalStorage()
        self._by_scheme: dict[str, ObjectStorage] = {"": local, "file": local, **(by_scheme or {})}

    def _for(self, url: str) -> ObjectStorage:
        scheme = urlparse(url).scheme
        try:
            return self._by_scheme[scheme]
        except KeyError:
            raise StorageError(f"{url}: no storage adapter for {scheme}:// on this worker "
                               f"(configured: {sorted(s for s in self._by_scheme if s)})") from None

    def download(self, url: str, dst: Path) -> None:
        self._for(url).download(url, dst)

    def upload(self, src: Path, url: str) -> None:
        self._for(url).upload(src, url)


def host_path_in_io(io_dir: Path, container_path: str) -> Path:
    """Map a path the job names inside the container (/io/...) to the host, refusing escapes."""
    inside = PurePosixPath(container_path)
    if not inside.is_absolute():
        inside = IO_MOUNT / inside
    try:
        rel = inside.relative_to(IO_MOUNT)
    except ValueError:
        raise StorageError(f"{container_path}: files must be copied to or from /io") from None
    if ".." in rel.parts:
        raise StorageError(f"{container_path}: '..' is not allowed")
    host = io_dir / rel
    real_root = os.path.realpath(io_dir)
    real = os.path.realpath(host)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise StorageError(f"{container_path}: resolves outside /io")
    return host
