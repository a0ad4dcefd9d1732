"""A FIFO weighted semaphore over the worker's mCPU (Hail's FIFOWeightedSemaphore).

Attempts take their cores before their containers start and give them back when the main step
ends. FIFO: a big job at the head is not starved by small ones behind it. An acquire can be
abandoned when `cancel` fires (a kill for an attempt still waiting for cores).
"""

from __future__ import annotations

import asyncio
from collections import deque


class CapacityExceeded(ValueError):
    """A single request larger than the whole worker."""


class WeightedSemaphore:
    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.available = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, weight: int, cancel: asyncio.Event | None = None) -> bool:
        """Take `weight` units; False if `cancel` fired first (then nothing is held)."""
        if weight > self.capacity:
            raise CapacityExceeded(f"asked for {weight} of a capacity of {self.capacity}")
        if not self._waiters and self.available >= weight:
            self.available -= weight
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (weight, fut)
        self._waiters.append(entry)
        cancel_task = asyncio.create_task(cancel.wait()) if cancel is not None else None
        try:
            waiting: set[asyncio.Future[object]] = {fut}  # type: ignore[arg-type]
            if cancel_task is not None:
                waiting.add(cancel_task)  # type: ignore[arg-type]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            self._abandon(entry)
            raise
        finally:
            if cancel_task is not None:
                cancel_task.cancel()
        if fut.done():
            return True
        self._abandon(entry)
        return False

    def _abandon(self, entry: tuple[int, asyncio.Future[None]]) -> None:
        weight, fut = entry
        if fut.done() and not fut.cancelled():
            self.release(weight)  # granted in the same instant we gave up: hand it back
        elif entry in self._waiters:
            self._waiters.remove(entry)
            fut.cancel()
            self._wake()

    def release(self, weight: int) -> None:
        self.available += weight
        if self.available > self.capacity:
            raise RuntimeError("released more than was acquired")
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.available:
            weight, fut = self._waiters.popleft()
            self.available -= weight
            fut.set_result(None)

    @property
    def in_use(self) -> int:
        return self.capacity - self.available
