"""When a fold takes its next snapshot.

Due once there is something new and either `interval_s` passed or `max_tail_records` records were
folded since the last one (the tail a restart would refold stays short); but never so often that
taking snapshots costs more than `max_share` of the fold's time: after a snapshot that took C
seconds the next waits at least C / max_share.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SnapshotSettings:
    interval_s: float = 30.0
    max_tail_records: int = 200_000
    max_share: float = 0.1


class SnapshotSchedule:
    def __init__(self, settings: SnapshotSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or SnapshotSettings()
        self._clock = clock
        self._last_at = clock()
        self._last_cost = 0.0
        self.records_since = 0

    def folded(self, n: int) -> None:
        self.records_since += n

    def due(self) -> bool:
        if self.records_since == 0:
            return False
        elapsed = self._clock() - self._last_at
        if elapsed < self._last_cost / self.settings.max_share:
            return False
        return elapsed >= self.settings.interval_s or self.records_since >= self.settings.max_tail_records

    def taken(self, cost_s: float) -> None:
        self._last_at = self._clock()
        self._last_cost = cost_s
        self.records_since = 0

    def failed(self) -> None:
        """A snapshot could not be written: try again after a full interval, keeping the count."""
        self._last_at = self._clock()
        self._last_cost = self.settings.interval_s * self.settings.max_share
