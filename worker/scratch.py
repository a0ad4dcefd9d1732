"""Per-attempt scratch space with a size quota: /io in every step, and the writable layer of the
main container's root filesystem (worker/rootfs.py), so one quota bounds everything a job writes.

The quota is a loop-mounted ext4 image per attempt (XFS project quotas, Hail's way, are not
available in this kernel, and `--storage-opt size` needs XFS). A sparse image costs nothing
until written; mkfs + mount take ~40 ms. Writing past the quota gives the job ENOSPC, and the
attempt reports storage_quota_exceeded when the main step fails with its volume full.
Mode "directory" (no quota) exists for machines without loop devices.

Scratch layout: <scratch_root>/<attempt_dir>/{io.img, vol/{io/, rootfs/}}, the volume mounted at
vol/; the name is deterministic, so a restarted agent finds the volume of an attempt it re-attaches.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

GIB = 1 << 30
FULL_THRESHOLD_BYTES = 1 << 20  # less free than this after a failure: the job ran out of quota


class ScratchError(Exception):
    """The scratch volume could not be prepared (a system failure: the message says what failed)."""


def scratch_quota_bytes(storage_gib: int, cores_mcpu: int, per_core_bytes: int, cap_bytes: int) -> int:
    """Hail's rule: the requested storage plus min(cap, per_core x cores) for the job's own use."""
    return storage_gib * GIB + min(cap_bytes, per_core_bytes * cores_mcpu // 1000)


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise ScratchError(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode(errors='replace').strip()}")


@dataclass(frozen=True)
class ScratchVolume:
    root: Path
    quota_bytes: int | None

    @property
    def mount_point(self) -> Path:
        return self.root / "vol"

    @property
    def io_dir(self) -> Path:
        return self.mount_point / "io"

    @property
    def rootfs_dir(self) -> Path:
        """Where the main container's root filesystem keeps its writes (on the same quota as /io)."""
        return self.mount_point / "rootfs"

    @property
    def image(self) -> Path:
        return self.root / "io.img"

    def used_bytes(self) -> int:
        if self.quota_bytes is None:
            return _du(self.mount_point)
        st = os.statvfs(self.mount_point)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    def is_full(self) -> bool:
        if self.quota_bytes is None:
            return False
        st = os.statvfs(self.mount_point)
        return st.f_bavail * st.f_frsize < FULL_THRESHOLD_BYTES


def _du(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _make_dirs(vol: ScratchVolume) -> None:
    """/io and the writable layer's directory, 0755 root: the job's root owns /io through its
    idmapped mount, and the rootfs layer is only ever reached through the overlay."""
    for d in (vol.io_dir, vol.rootfs_dir):
        d.mkdir(parents=True, exist_ok=True)


def _is_mount(path: Path) -> bool:
    return os.path.ismount(path)


def _prepare_sparse_image(vol: ScratchVolume) -> bool:
    """Create the mount point and a sparse image of the quota's size; True if already mounted."""
    vol.mount_point.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(vol.mount_point):
        return True
    with open(vol.image, "wb") as f:
        f.truncate(vol.quota_bytes or 0)
    return False


class ScratchManager:
    def __init__(self, scratch_root: Path, mode: str = "loop") -> None:
        if mode not in ("loop", "directory"):
            raise ValueError(f"scratch mode must be 'loop' or 'directory', not {mode!r}")
        self.scratch_root = scratch_root
        self.mode = mode

    def path_for(self, name: str) -> Path:
        return self.scratch_root / name

    async def create(self, name: str, quota_bytes: int) -> ScratchVolume:
        root = self.path_for(name)
        if self.mode == "directory":
            vol = ScratchVolume(root, None)
            _make_dirs(vol)
            return vol
        vol = ScratchVolume(root, quota_bytes)
        if _prepare_sparse_image(vol):
            return vol  # re-attached after a restart: the volume is still mounted
        # no journal (scratch is disposable), no reserved blocks (jobs run as root and would use them)
        await _run("mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal",
                   "-E", "lazy_itable_init=1,lazy_journal_init=1", str(vol.image))
        await _run("mount", "-o", "loop,nosuid,nodev", str(vol.image), str(vol.mount_point))
        _make_dirs(vol)
        return vol

    def attach(self, name: str) -> ScratchVolume | None:
        """The volume of an attempt from before a restart, if it still exists."""
        root = self.path_for(name)
        vol = ScratchVolume(root, None)
        if not vol.io_dir.is_dir():
            return None
        mounted = os.path.ismount(vol.mount_point)
        return ScratchVolume(root, vol.image.stat().st_size if mounted else None)

    async def destroy(self, name: str) -> None:
        root = self.path_for(name)
        mount_point = ScratchVolume(root, None).mount_point
        if _is_mount(mount_point):
            try:
                await _run("umount", str(mount_point))
            except ScratchError:
                await _run("umount", "-l", str(mount_point))  # still busy (a dying container): detach lazily
        await asyncio.to_thread(shutil.rmtree, root, True)
