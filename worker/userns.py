"""Host id ranges for the jobs' user namespaces: one 65536-id slot per container, leased on disk.

uid 0 in a job is host uid `start + slot x 65536`, an id nothing on the host owns, and no two live
containers share a slot, so a job that escapes its container is an unprivileged stranger to the
host and to every other job. The range comes from the `squall` entry of /etc/subuid and /etc/subgid
(deploy/podman/setup.sh writes it), which also keeps useradd from handing those ids out.

Leases are files under a host-wide directory (tmpfs, like the mounts they go with), created with
O_EXCL so any number of agents on the host allocate without a lock: slots/<n> names the owner (the
container's name), owners/<name> the slot. A lease lives until its container is removed; leases
left by a crashed agent are found by `leases()` and released by the agent's start-up sweep.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

SUBID_NAME = "squall"
SLOT_SIZE = 65536
DEFAULT_STATE_DIR = Path("/run/squall/sandbox/userns")
_OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,250}$")


class UsernsConfigError(RuntimeError):
    """The host has no usable subordinate id range; the message says how to add one."""


@dataclass(frozen=True, slots=True)
class IdMapping:
    """Container ids 0..size-1 are host uids uid_start.. and gids gid_start.."""

    uid_start: int
    gid_start: int
    size: int


def parse_subid(text: str, name: str) -> list[tuple[int, int]]:
    """The (start, count) ranges of `name` in a subuid/subgid file ("name:start:count" lines)."""
    ranges = []
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] == name and parts[1].isdigit() and parts[2].isdigit():
            ranges.append((int(parts[1]), int(parts[2])))
    return ranges


def read_subid_range(name: str = SUBID_NAME, subuid: Path = Path("/etc/subuid"),
                     subgid: Path = Path("/etc/subgid")) -> tuple[tuple[int, int], tuple[int, int]]:
    """The first uid and gid range of `name`; raises UsernsConfigError with the fix when absent."""
    found = []
    for path in (subuid, subgid):
        try:
            ranges = parse_subid(path.read_text(), name)
        except FileNotFoundError:
            ranges = []
        if not ranges or ranges[0][1] < SLOT_SIZE:
            raise UsernsConfigError(f"{path} has no {name}:START:COUNT range of at least {SLOT_SIZE} ids for "
                                    "the jobs' user namespaces; run deploy/podman/setup.sh as root")
        found.append(ranges[0])
    return found[0], found[1]


class SlotAllocator:
    def __init__(self, uid_range: tuple[int, int], gid_range: tuple[int, int],
                 state_dir: Path = DEFAULT_STATE_DIR, slot_size: int = SLOT_SIZE) -> None:
        self.uid_start, self.gid_start = uid_range[0], gid_range[0]
        self.slot_size = slot_size
        self.n_slots = min(uid_range[1], gid_range[1]) // slot_size
        if self.n_slots < 1:
            raise UsernsConfigError(f"the subordinate id ranges hold no slot of {slot_size} ids")
        self.slots_dir = state_dir / "slots"
        self.owners_dir = state_dir / "owners"
        for d in (self.slots_dir, self.owners_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def mapping(self, slot: int) -> IdMapping:
        return IdMapping(self.uid_start + slot * self.slot_size, self.gid_start + slot * self.slot_size,
                         self.slot_size)

    def lease_of(self, owner: str) -> int | None:
        path = self.owners_dir / _checked(owner)
        try:
            return int(path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def acquire(self, owner: str) -> int:
        """The owner's slot: its existing lease, or a free slot leased to it now."""
        existing = self.lease_of(owner)
        if existing is not None:
            return existing
        # lowest free slot first: slots (and their cached namespace fds) are reused, and a probe
        # of a taken slot is one failed open
        for slot in range(self.n_slots):
            try:
                fd = os.open(self.slots_dir / str(slot), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as f:
                f.write(owner)
            tmp = self.owners_dir / f".{owner}.{os.getpid()}"
            tmp.write_text(str(slot))
            tmp.replace(self.owners_dir / owner)
            return slot
        raise UsernsConfigError(f"all {self.n_slots} user-namespace slots are leased; widen the {SUBID_NAME} "
                                "range in /etc/subuid and /etc/subgid")

    def release(self, owner: str) -> int | None:
        """End the owner's lease; returns the slot it held (None if it held none)."""
        slot = self.lease_of(owner)
        if slot is None:  # a lease whose owner file was never written (the agent died in between)
            slot = self.leases().get(owner)
        if slot is None:
            return None
        slot_file = self.slots_dir / str(slot)
        try:
            if slot_file.read_text() == owner:
                slot_file.unlink()
        except FileNotFoundError:
            pass
        (self.owners_dir / owner).unlink(missing_ok=True)
        return slot

    def lease_age_s(self, slot: int) -> float | None:
        try:
            return time.time() - (self.slots_dir / str(slot)).stat().st_mtime
        except FileNotFoundError:
            return None

    def leases(self) -> dict[str, int]:
        """Every lease on the host: owner -> slot."""
        out = {}
        for entry in os.scandir(self.slots_dir):
            try:
                out[Path(entry.path).read_text()] = int(entry.name)
            except (FileNotFoundError, ValueError):
                continue
        return out


def _checked(owner: str) -> str:
    if not _OWNER.match(owner):
        raise ValueError(f"not a container name: {owner!r}")
    return owner
