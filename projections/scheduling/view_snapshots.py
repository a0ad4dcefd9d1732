"""Snapshots of the scheduling view: the whole SchedulingState (projections/scheduling/state.py, sealed
by its state_codec.py) with the positions it covers, shared by every follower of the same topics (the
scheduler that leads, the autoscaler). A follower starts from
the newest snapshot and folds only the tail; it stores one when its schedule says so, unless another
follower stored one further on (the store keeps the one ahead, projections/snapshots/store.py).

    snapshots = ViewSnapshots(PostgresSnapshotStore(url), view_name(topics))
    loaded = await snapshots.load()                     # (state, positions) or None: fold from offset 0
    await snapshots.save(state, positions)              # when snapshots.schedule.due()
"""

from __future__ import annotations

import logging
import time

from events.topics import Topics
from projections.scheduling.state import SchedulingState
from projections.scheduling.state_codec import FORMAT_NAME, decode_state, encode_state
from projections.snapshots.schedule import SnapshotSchedule, SnapshotSettings
from projections.snapshots.sealed import SnapshotCorrupt, SnapshotOutdated, SnapshotUnusable
from projections.snapshots.store import (
    SnapshotStore,
    SnapshotStoreError,
    TopicPartition,
    ViewSnapshot,
    dominates,
)

log = logging.getLogger(__name__)


def view_name(topics: Topics) -> str:
    return f"{topics.prefix}scheduling"


class ViewSnapshots:
    def __init__(self, store: SnapshotStore, name: str, settings: SnapshotSettings | None = None) -> None:
        self.store = store
        self.name = name
        self.schedule = SnapshotSchedule(settings)
        self.format = FORMAT_NAME
        self.restored = False
        self.saves = 0
        self.unusable = 0
        self.last_save_s = 0.0

    async def load(self) -> tuple[SchedulingState, dict[TopicPartition, int]] | None:
        try:
            snapshot = await self.store.view(self.name)
        except SnapshotStoreError as exc:
            log.warning("no snapshot of view %s (the store cannot be read: %s); folding from offset 0", self.name, exc)
            return None
        if snapshot is None:
            return None
        try:
            if snapshot.format != self.format:
                raise SnapshotOutdated(f"format {snapshot.format}, this fold writes {self.format}")
            state = decode_state(snapshot.blob)
        except SnapshotUnusable as exc:
            self.unusable += 1
            if isinstance(exc, SnapshotCorrupt):
                log.error("CORRUPT snapshot of view %s: %s; ignoring it and folding from offset 0", self.name, exc)
            else:
                log.warning("outdated snapshot of view %s: %s; folding from offset 0 (once)", self.name, exc)
            return None
        self.restored = True
        return state, dict(snapshot.positions)

    async def save(self, state: SchedulingState, positions: dict[TopicPartition, int]) -> bool:
        """Store the state unless the stored snapshot is further on somewhere; False if not stored."""
        started = time.monotonic()
        try:
            stored = await self.store.view_head(self.name)
            if stored is not None and stored.format == self.format and not dominates(positions, stored.positions):
                self.schedule.taken(time.monotonic() - started)  # another follower is ahead: fine, not a failure
                return False
            blob = encode_state(state)
            saved = await self.store.save_view(self.name, ViewSnapshot(self.format, dict(positions), blob))
        except SnapshotStoreError as exc:
            log.warning("snapshot of view %s not stored (%s); the next one retries", self.name, exc)
            self.schedule.failed()
            return False
        self.last_save_s = time.monotonic() - started
        self.schedule.taken(self.last_save_s)
        self.saves += saved
        return saved
