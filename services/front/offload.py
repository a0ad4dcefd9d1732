"""The front end's CPU-heavy request work, off the event loop.

Decoding and checking a bunch of 1,024 job specs, planning its events and encoding them takes the
CPU for tens to hundreds of milliseconds; on the event loop that would stall every other request
(GET /healthcheck included) for as long. Work of that size runs on one dedicated thread instead:
the loop keeps answering, getting the GIL back every switch interval. One thread, because the GIL
lets only one run at a time anyway and a queue keeps the big requests from crowding the loop.
Small work stays inline, where a thread hop would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

INLINE_BODY_BYTES = 32 * 1024  # request bodies up to this size are decoded and checked inline
INLINE_EVENTS = 64  # plans and encodings of up to this many events stay inline


class CpuLane:
    """Run CPU-heavy work on the front's one worker thread (created on first use)."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="front-cpu")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def run_if(self, heavy: bool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(...)` on the lane when `heavy`, else inline."""
        return await self.run(fn, *args, **kwargs) if heavy else fn(*args, **kwargs)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def tune_gc_for_requests(young: int = 50_000) -> None:
    """For the front end's process, once start-up is done. CPython's collector holds the GIL, so a
    collection in the CPU thread stalls the event loop as much as one on it: a full collection over
    everything start-up allocated (FastAPI, pydantic, the codecs) took 100-500 ms while bunches
    arrived. Freeze that heap (never collected again: it lives as long as the process) and collect
    the young generation less often: a 1,024-job bunch keeps ~30,000 objects alive until it is
    answered, and the default threshold (700) ran dozens of collections over them per bunch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young, 20, 100)
