"""Resource usage of a running step: sampled while it runs, stored as a time series per step.

Stored format (the object at resource_usage_key(...) in squall's bucket), pandas "split" orientation, as the front
end's `/resource_usage` answers (Hail's column names; cpu_usage is in cores):

    {"columns": ["time_msecs", "memory_in_bytes", "cpu_usage", "io_storage_in_bytes"],
     "index": [0, 1, ...], "data": [[t, mem, cpu, io], ...]}

Sampling follows Hail: every 0.1 s for the first 5 s of a step, then backing off to every 5 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from worker.runtime import UsageSample

COLUMNS = ("time_msecs", "memory_in_bytes", "cpu_usage", "io_storage_in_bytes")
FAST_INTERVAL_S = 0.1
FAST_PERIOD_S = 5.0
MAX_INTERVAL_S = 5.0


def next_interval(elapsed_s: float, previous_s: float) -> float:
    if elapsed_s < FAST_PERIOD_S:
        return FAST_INTERVAL_S
    return min(MAX_INTERVAL_S, previous_s * 2)


@dataclass
class UsageSeries:
    rows: list[tuple[int, int, float, int]] = field(default_factory=list)
    cpu_ns_total: int = 0
    max_memory_bytes: int = 0
    max_io_bytes: int = 0
    _last: tuple[int, int] | None = None  # (time ms, cumulative cpu ns) of the previous sample

    def add(self, now_ms: int, sample: UsageSample | None, io_bytes: int) -> None:
        self.max_io_bytes = max(self.max_io_bytes, io_bytes)
        if sample is None:  # not running (yet, or any more): nothing to plot
            return
        cpu = 0.0
        if self._last is not None and now_ms > self._last[0]:
            cpu = (sample.cpu_usage_ns - self._last[1]) / 1e6 / (now_ms - self._last[0])
        self._last = (now_ms, sample.cpu_usage_ns)
        self.cpu_ns_total = max(self.cpu_ns_total, sample.cpu_usage_ns)
        self.max_memory_bytes = max(self.max_memory_bytes, sample.memory_bytes, sample.memory_peak_bytes or 0)
        self.rows.append((now_ms, sample.memory_bytes, round(max(cpu, 0.0), 4), io_bytes))

    def to_json(self) -> bytes:
        return json.dumps({"columns": list(COLUMNS), "index": list(range(len(self.rows))),
                           "data": [list(r) for r in self.rows]}).encode()


async def sample_until_stopped(series: UsageSeries, read: Callable[[], Awaitable[UsageSample | None]],
                               io_bytes: Callable[[], int], now_ms: Callable[[], int],
                               stop: asyncio.Event) -> None:
    """Append samples to series until stop is set."""
    start = now_ms()
    interval = FAST_INTERVAL_S
    while not stop.is_set():
        try:
            io = io_bytes()
        except OSError:
            io = 0
        series.add(now_ms(), await read(), io)
        interval = next_interval((now_ms() - start) / 1000, interval)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
