"""How a squall process stops: SIGTERM or SIGINT asks it to finish its step and return."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TypeVar

T = TypeVar("T")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, for a process's main loop to finish its step and return
    (call it from inside the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def cancel_when_stopped(task: asyncio.Task[T], stop: asyncio.Event) -> T | None:
    """Wait for `task`; cancel it once `stop` is set (for loops that stop by cancellation).
    Returns its result, or None when it was cancelled."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        return await task
    return None
