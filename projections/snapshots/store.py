"""Where the folds' snapshots live, and the rules every store keeps.

Resolver (one partition of the batch topic at a time):
- a *partition mark* (format, next_offset): every batch with an event below next_offset has a row
  that reflects all of that batch's events below it;
- a *batch row* per batch (format, as_of, quiescent, blob): the batch's state folded from its events
  below as_of. Quiescent rows are the completed batches the resolver dropped from memory; it reloads
  one when an event for it arrives. Active rows are what a restore loads.
- `save_partition` writes rows and the mark in one transaction. A row is replaced only by one of the
  same format that is no older (as_of >=), or by one of another format; the mark likewise only grows,
  or changes format. Two owners of a partition during a rebalance may therefore both write: each row
  and the mark only ever move forward through the log, and the mark's promise keeps holding.

Views (the scheduling state: all partitions of the batch, instance and heartbeat topics):
- one blob per name with the positions it covers; `save_view` replaces it only when the new
  positions are at or past the stored ones in every partition (another follower may be ahead).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

TopicPartition = tuple[str, int]


class SnapshotStoreError(Exception):
    """The store could not be read or written (PostgreSQL unreachable, tables missing, ...)."""


@dataclass(frozen=True, slots=True)
class PartitionMark:
    format: str
    next_offset: int


@dataclass(frozen=True, slots=True)
class BatchRow:
    batch_id: int
    format: str
    as_of: int
    quiescent: bool
    blob: bytes


@dataclass(frozen=True, slots=True)
class ViewSnapshot:
    format: str
    positions: dict[TopicPartition, int]
    blob: bytes


class SnapshotStore(Protocol):
    async def partition_mark(self, topic: str, partition: int) -> PartitionMark | None: ...

    async def active_batches(self, topic: str, partition: int) -> list[BatchRow]:
        """The rows of the partition that are not quiescent."""
        ...

    async def batches(self, topic: str, batch_ids: Collection[int]) -> list[BatchRow]:
        """The rows of these batches that exist (quiescent or not)."""
        ...

    async def save_partition(self, topic: str, partition: int, mark: PartitionMark,
                             rows: Sequence[BatchRow]) -> None: ...

    async def view_head(self, name: str) -> ViewSnapshot | None:
        """The stored view's format and positions, without its state (blob empty)."""
        ...

    async def view(self, name: str) -> ViewSnapshot | None: ...

    async def save_view(self, name: str, snapshot: ViewSnapshot) -> bool:
        """Store it unless the stored one is ahead somewhere; True when stored."""
        ...

    async def close(self) -> None: ...


def row_replaces(new_format: str, new_as_of: int, old_format: str, old_as_of: int) -> bool:
    return new_format != old_format or new_as_of >= old_as_of


def dominates(new: Mapping[TopicPartition, int], old: Mapping[TopicPartition, int]) -> bool:
    return all(new.get(tp, 0) >= offset for tp, offset in old.items())


class MemorySnapshotStore:
    """The in-memory fake (tests/contract/test_snapshot_store.py holds it to the same contract)."""

    def __init__(self) -> None:
        self.marks: dict[TopicPartition, PartitionMark] = {}
        self.rows: dict[tuple[str, int], tuple[int, BatchRow]] = {}  # (topic, batch) -> (partition, row)
        self.views: dict[str, ViewSnapshot] = {}
        self.saves = 0

    async def partition_mark(self, topic: str, partition: int) -> PartitionMark | None:
        return self.marks.get((topic, partition))

    async def active_batches(self, topic: str, partition: int) -> list[BatchRow]:
        return sorted((row for (t, _), (p, row) in self.rows.items() if t == topic and p == partition
                       and not row.quiescent), key=lambda r: r.batch_id)

    async def batches(self, topic: str, batch_ids: Collection[int]) -> list[BatchRow]:
        return [self.rows[(topic, b)][1] for b in sorted(set(batch_ids)) if (topic, b) in self.rows]

    async def save_partition(self, topic: str, partition: int, mark: PartitionMark,
                             rows: Sequence[BatchRow]) -> None:
        self.saves += 1
        for row in rows:
            old = self.rows.get((topic, row.batch_id))
            if old is None or row_replaces(row.format, row.as_of, old[1].format, old[1].as_of):
                self.rows[(topic, row.batch_id)] = (partition, row)
        old_mark = self.marks.get((topic, partition))
        if old_mark is None or old_mark.format != mark.format or mark.next_offset > old_mark.next_offset:
            self.marks[(topic, partition)] = mark

    async def view_head(self, name: str) -> ViewSnapshot | None:
        view = self.views.get(name)
        return ViewSnapshot(view.format, dict(view.positions), b"") if view else None

    async def view(self, name: str) -> ViewSnapshot | None:
        return self.views.get(name)

    async def save_view(self, name: str, snapshot: ViewSnapshot) -> bool:
        old = self.views.get(name)
        if old is not None and old.format == snapshot.format and not dominates(snapshot.positions, old.positions):
            return False
        self.saves += 1
        self.views[name] = snapshot
        return True

    async def close(self) -> None:
        pass
