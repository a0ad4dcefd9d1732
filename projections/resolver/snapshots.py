"""The resolver's snapshots: restore a partition from its snapshot, bring back batches that left
memory, and store what changed (projections/snapshots/store.py has the rules a store keeps).

    snapshots = ResolverSnapshots(PostgresSnapshotStore(url))
    restored = await snapshots.restore(core, tp)       # None: no usable snapshot, refold from 0
    await snapshots.bring_back(core, core.wanted_batches(incoming))
    await snapshots.save(core, owned_partitions)        # when snapshots.schedule.due()

A snapshot that cannot be used never stops the resolver and is never half-used: an outdated one
(another version of the fold wrote it) is skipped with a note, a corrupt one with an error naming it,
and the partition is refolded from offset 0, which rewrites every row of it in the current format.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from events.core.state import BatchState
from projections.resolver.batch_codec import FORMAT_NAME, decode_batch, encode_batch
from projections.resolver.core import ResolverCore, TopicPartition
from projections.snapshots.schedule import SnapshotSchedule, SnapshotSettings
from projections.snapshots.sealed import SnapshotCorrupt, SnapshotOutdated, SnapshotUnusable
from projections.snapshots.store import BatchRow, PartitionMark, SnapshotStore, SnapshotStoreError

log = logging.getLogger(__name__)

BRING_BACK_TRIES = 3
BRING_BACK_PAUSE_S = 0.5


@dataclass
class SnapshotStats:
    restored_partitions: int = 0
    refolded_partitions: int = 0
    unusable: int = 0  # outdated or corrupt snapshots met
    saves: int = 0
    rows_written: int = 0
    evicted: int = 0
    brought_back: int = 0
    last_save_s: float = 0.0


class ResolverSnapshots:
    def __init__(self, store: SnapshotStore, settings: SnapshotSettings | None = None) -> None:
        self.store = store
        self.schedule = SnapshotSchedule(settings)
        self.stats = SnapshotStats()
        self.format = FORMAT_NAME

    async def restore(self, core: ResolverCore, tp: TopicPartition) -> int | None:
        """Start owning `tp` from its snapshot; returns how many active batches it held, or None when
        there is no usable one (the caller refolds from offset 0)."""
        topic, partition = tp
        try:
            mark = await self.store.partition_mark(topic, partition)
            if mark is None:
                return None
            if mark.format != self.format:
                raise SnapshotOutdated(f"format {mark.format}, this resolver writes {self.format}")
            rows = await self.store.active_batches(topic, partition)
            batches = {row.batch_id: self._decode(row) for row in rows}
        except SnapshotStoreError as exc:
            log.warning("no snapshot of %s[%d] (the store cannot be read: %s); refolding from offset 0", *tp, exc)
            return None
        except SnapshotUnusable as exc:
            self._unusable(tp, exc)
            return None
        core.begin_restore(tp, mark.next_offset, batches)
        self.stats.restored_partitions += 1
        return len(batches)

    async def bring_back(self, core: ResolverCore, wanted: dict[TopicPartition, set[int]]) -> None:
        """Put back in memory the batches of `wanted` that left it. Raises SnapshotUnusable (a row
        that cannot be read) or SnapshotStoreError (the store stayed unreachable): the caller refolds
        that partition."""
        for tp, batch_ids in wanted.items():
            rows = await self._rows(tp[0], batch_ids)
            for row in rows:
                try:
                    state = self._decode(row)
                except SnapshotUnusable as exc:
                    self._unusable(tp, exc, f"batch {row.batch_id}")
                    raise
                core.adopt(tp, row.batch_id, state, row.as_of)
            self.stats.brought_back += len(rows)

    async def _rows(self, topic: str, batch_ids: set[int]) -> list[BatchRow]:
        for attempt in range(1, BRING_BACK_TRIES + 1):
            try:
                return await self.store.batches(topic, batch_ids)
            except SnapshotStoreError:
                if attempt == BRING_BACK_TRIES:
                    raise
                await asyncio.sleep(BRING_BACK_PAUSE_S)
        raise AssertionError("unreachable")

    async def save(self, core: ResolverCore, tps: Iterable[TopicPartition]) -> bool:
        """Store every batch evolved since the last save of each partition, with the partition's mark,
        then drop the quiescent ones from memory. False when a partition could not be stored (its
        changes are kept for the next try)."""
        started = time.monotonic()
        ok = True
        for tp in sorted(tps):
            if tp not in core.partitions:
                continue
            next_offset, changed = core.take_changes(tp)
            rows, quiescent = [], []
            for batch_id, state in changed.items():
                still = core.is_quiescent(state)
                rows.append(BatchRow(batch_id, self.format, next_offset, still, encode_batch(state)))
                if still:
                    quiescent.append(batch_id)
            try:
                await self.store.save_partition(tp[0], tp[1], PartitionMark(self.format, next_offset), rows)
            except SnapshotStoreError as exc:
                log.warning("snapshot of %s[%d] not stored (%s); the next one retries", *tp, exc)
                core.keep_changes(tp, changed)
                ok = False
                continue
            self.stats.rows_written += len(rows)
            self.stats.evicted += core.evict(tp, quiescent)
        cost = time.monotonic() - started
        if ok:
            self.schedule.taken(cost)
            self.stats.saves += 1
            self.stats.last_save_s = cost
        else:
            self.schedule.failed()
        return ok

    def _decode(self, row: BatchRow) -> BatchState:
        if row.format != self.format:
            raise SnapshotOutdated(f"batch {row.batch_id} has format {row.format}, this resolver writes {self.format}")
        return decode_batch(row.blob)

    def _unusable(self, tp: TopicPartition, exc: SnapshotUnusable, what: str = "") -> None:
        self.stats.unusable += 1
        where = f"{tp[0]}[{tp[1]}]" + (f" ({what})" if what else "")
        if isinstance(exc, SnapshotCorrupt):
            log.error("CORRUPT snapshot of %s: %s; ignoring it and refolding the partition from offset 0", where, exc)
        else:
            log.warning("outdated snapshot of %s: %s; refolding the partition from offset 0 (once)", where, exc)
