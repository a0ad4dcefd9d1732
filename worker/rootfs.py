"""A job's root filesystem: the image's layers read-only and idmapped into the job's user
namespace, under a writable layer of bounded size.

    <mount_root>/<slot>/l/<i>  image layer i (top first): an idmapped, read-only, nosuid bind
    <mount_root>/<slot>/w      a size-limited tmpfs holding upper/ and work/, for containers
                               without a writable directory of their own
    <mount_root>/<slot>/root   the overlay the container gets as / (podman's --rootfs)

The writable layer (the overlay's upper) is on the attempt's scratch volume when it has one: the
loop-mounted ext4 that also holds /io, so a single quota covers /io and every write to /, as
Hail's XFS project quota covers a job's whole scratch directory. Otherwise it is a tmpfs of a given
size (its pages count against the container's memory too). Writing past either limit gives the
job ENOSPC; nothing it writes lands on the host's own disk, and the image's layers cannot change.

Slots (worker/userns.py) key the directories: one container per slot at a time, short paths so
an overlay of ~100 layers still fits the kernel's one-page option limit. The directories are kept
for the slot's next container (slots are reused lowest first): only mounts come and go.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from worker.mounts import idmapped_bind, mount_overlay, mount_tmpfs, unmount, userns_fd
from worker.userns import IdMapping

DEFAULT_MOUNT_ROOT = Path("/run/squall/sandbox/mnt")
log = logging.getLogger("squall.worker.rootfs")


class RootfsBuilder:
    def __init__(self, mount_root: Path = DEFAULT_MOUNT_ROOT) -> None:
        self.mount_root = mount_root
        mount_root.mkdir(parents=True, exist_ok=True)
        os.chmod(mount_root, 0o711)  # the job's runtime (its mapped root) must traverse to its rootfs

    def root_of(self, slot: int) -> Path:
        return self.mount_root / str(slot) / "root"

    def build(self, slot: int, layers: list[str], mapping: IdMapping, writable_dir: Path | None,
              tmpfs_bytes: int) -> Path:
        """Mount the container's / for `slot` (after unmounting any leftover of an earlier try)."""
        self.teardown(slot)
        base = self.mount_root / str(slot)
        try:
            ns = userns_fd(mapping.uid_start, mapping.gid_start, mapping.size)
            try:
                lowers = []
                for i, layer in enumerate(layers):
                    target = base / "l" / str(i)
                    target.mkdir(parents=True, exist_ok=True)
                    idmapped_bind(layer, target, ns, read_only=True)
                    lowers.append(target)
            finally:
                os.close(ns)
            if writable_dir is None:
                writable_dir = base / "w"
                writable_dir.mkdir(exist_ok=True)
                mount_tmpfs(writable_dir, tmpfs_bytes)
            upper, work = writable_dir / "upper", writable_dir / "work"
            for d in (upper, work):
                d.mkdir(parents=True, exist_ok=True)
            # a volatile overlay marks its workdir when mounted; a retried create reuses the dir
            shutil.rmtree(work / "incompat", ignore_errors=True)
            # the top of the overlay is the container's "/": owned by its root, as in any image
            os.chown(upper, mapping.uid_start, mapping.gid_start)
            os.chmod(upper, 0o755)
            root = base / "root"
            root.mkdir(exist_ok=True)
            mount_overlay(lowers, upper, work, root)
            return root
        except BaseException:
            self.teardown(slot)
            raise

    def teardown(self, slot: int) -> None:
        """Unmount the slot's root, writable tmpfs and layers. The (empty) directories stay for the
        slot's next container: they are never removed, so nothing is ever deleted through a mount."""
        base = self.mount_root / str(slot)
        if not base.is_dir():
            return
        layers = sorted((base / "l").iterdir(), key=lambda p: int(p.name)) if (base / "l").is_dir() else []
        for path in (base / "root", base / "w", *layers):
            try:
                unmount(path)
            except OSError as exc:
                log.warning("could not unmount %s of sandbox slot %d: %s", path, slot, exc)
