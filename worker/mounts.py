"""The Linux mount calls the job sandbox needs and the standard library lacks (root only).

- `userns_fd(...)`: a user namespace holding an id mapping, as a file descriptor; made once per
  mapping by a short-lived `unshare --user` child whose maps we write, then cached.
- `idmapped_bind(src, dst, fd)`: a bind mount through which on-disk id N appears as the mapping's
  N (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount; kernel 5.12+; overlayfs accepts
  idmapped layers since 5.19).
- `mount_overlay`, `mount_tmpfs`, `unmount`.
The syscall numbers are the generic table's, the same on x86_64 and arm64.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
import threading
import time
from collections import OrderedDict
from pathlib import Path

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_MOUNT_SETATTR = 428, 429, 442
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x100000
MS_NOSUID, MS_NODEV = 0x2, 0x4
MNT_DETACH = 0x2
MAX_CACHED_USERNS = 512

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


class MountError(OSError):
    """A mount call failed; the message names the call and the path."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise MountError(err, f"{what}: {os.strerror(err)}")
    return result


_userns_lock = threading.Lock()
_userns_cache: OrderedDict[tuple[int, int, int], int] = OrderedDict()


def userns_fd(uid_start: int, gid_start: int, size: int) -> int:
    """An fd of a user namespace mapping ids 0..size-1 to uid_start.. / gid_start..; the caller
    closes it (it is a dup of a cached one, so evicting the cache never pulls it from under a user)."""
    key = (uid_start, gid_start, size)
    with _userns_lock:
        fd = _userns_cache.get(key)
        if fd is None:
            fd = _userns_cache[key] = _new_userns_fd(uid_start, gid_start, size)
            while len(_userns_cache) > MAX_CACHED_USERNS:
                os.close(_userns_cache.popitem(last=False)[1])
        else:
            _userns_cache.move_to_end(key)
        return os.dup(fd)


def _new_userns_fd(uid_start: int, gid_start: int, size: int) -> int:
    own = os.readlink("/proc/self/ns/user")
    child = subprocess.Popen(["unshare", "--user", "--", "sleep", "30"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while True:  # until the child has entered its new namespace
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{child.pid}/ns/user") != own:
                    break
            if child.poll() is not None or time.monotonic() > deadline:
                err = child.stderr.read().decode(errors="replace") if child.stderr else ""
                raise MountError(0, f"unshare --user did not start a user namespace: {err.strip()}")
            time.sleep(0.001)
        Path(f"/proc/{child.pid}/uid_map").write_text(f"0 {uid_start} {size}\n")
        Path(f"/proc/{child.pid}/setgroups").write_text("deny")
        Path(f"/proc/{child.pid}/gid_map").write_text(f"0 {gid_start} {size}\n")
        return os.open(f"/proc/{child.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        child.kill()
        child.wait()
        if child.stderr:
            child.stderr.close()


def idmapped_bind(source: str | Path, target: str | Path, ns_fd: int, read_only: bool = True) -> None:
    """Bind source onto target (an existing directory), ids shifted by the namespace's mapping."""
    tree = _check(_libc.syscall(SYS_OPEN_TREE, AT_FDCWD, os.fsencode(source),
                                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), f"open_tree {source}")
    try:
        attr = _MountAttr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                          | (MOUNT_ATTR_RDONLY if read_only else 0), 0, 0, ns_fd)
        _check(_libc.syscall(SYS_MOUNT_SETATTR, tree, b"", AT_EMPTY_PATH, ctypes.byref(attr),
                             ctypes.sizeof(attr)), f"mount_setattr(idmap) {source}")
        _check(_libc.syscall(SYS_MOVE_MOUNT, tree, b"", AT_FDCWD, os.fsencode(target), MOVE_MOUNT_F_EMPTY_PATH),
               f"move_mount {source} -> {target}")
    finally:
        os.close(tree)


def mount_overlay(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """An overlay of lowers (top first) with a writable upper; options are limited to one page."""
    # volatile: no syncs of the writable layer (it is thrown away with the attempt), so unmounting
    # does not flush it to disk
    data = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work},volatile"
    if len(data) >= 4000:
        raise MountError(0, f"overlay options too long ({len(lowers)} layers): at most a page")
    _check(_libc.mount(b"overlay", os.fsencode(target), b"overlay", MS_NOSUID | MS_NODEV, data.encode()),
           f"mount overlay on {target}")


def mount_tmpfs(target: Path, size_bytes: int, mode: int = 0o755) -> None:
    _check(_libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", MS_NOSUID | MS_NODEV,
                       f"size={size_bytes},mode={mode:o}".encode()), f"mount tmpfs on {target}")


def unmount(target: Path) -> None:
    """Unmount whatever is mounted on target (lazily if still busy); nothing if it is no mount point.
    (os.path.ismount cannot tell: a bind mount from the same filesystem has the parent's st_dev.)"""
    path = os.fsencode(target)
    for _ in range(8):  # mounts stacked on the same point come off one by one
        if _libc.umount2(path, 0) == 0:
            continue
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):  # not (or no longer) a mount point
            return
        if err != errno.EBUSY:
            raise MountError(err, f"umount {target}: {os.strerror(err)}")
        _check(_libc.umount2(path, MNT_DETACH), f"umount -l {target}")
