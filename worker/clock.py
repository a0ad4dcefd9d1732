"""The one place the agent gets time and fresh ids from, so tests can control both."""

from __future__ import annotations

import time
import uuid
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, milliseconds since the epoch (UTC): what events and documents carry."""
        ...

    def new_id(self) -> str:
        """A fresh unique id (non-derived event ids)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def new_id(self) -> str:
        return uuid.uuid4().hex


class ManualClock:
    """A clock tests move by hand; ids are a counter, so runs are reproducible."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms
        self._n = 0

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms

    def new_id(self) -> str:
        self._n += 1
        return f"id-{self._n:08d}"
