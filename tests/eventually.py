"""The suite's one way to wait: poll a condition until it holds or a deadline passes.

Tests wait for what they expect to see instead of sleeping a fixed time: a fixed sleep is either
too short on a loaded machine (a flaky failure) or longer than needed everywhere else. The
condition returns a truthy value when met (returned to the caller) and may be async."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT_S = 30.0


def _timed_out(what: str, timeout_s: float, last: BaseException | None) -> AssertionError:
    detail = f" (last error: {last!r})" if last is not None else ""
    return AssertionError(f"timed out after {timeout_s:g}s waiting for {what}{detail}")


async def eventually(condition: Callable[[], Any], *, timeout_s: float = DEFAULT_TIMEOUT_S,
                     interval_s: float = 0.05, what: str = "the condition",
                     ignoring: tuple[type[BaseException], ...] = ()) -> Any:
    """Await until `condition()` (a value or an awaitable) is truthy; return it. Exceptions of the
    `ignoring` types count as not yet (a server still starting); any other exception propagates."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        except ignoring as exc:
            last = exc
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout_s, last)
        await asyncio.sleep(interval_s)


def eventually_sync(condition: Callable[[], Any], *, timeout_s: float = DEFAULT_TIMEOUT_S,
                    interval_s: float = 0.05, what: str = "the condition",
                    ignoring: tuple[type[BaseException], ...] = ()) -> Any:
    """`eventually` for code with no event loop (the e2e suite's HTTP client, subprocesses)."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except ignoring as exc:
            last = exc
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout_s, last)
        time.sleep(interval_s)
