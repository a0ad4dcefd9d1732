"""The suite's one polling helper: returns the condition's value, waits through not-yet, and fails
saying what it waited for."""

from __future__ import annotations

import pytest

from tests.eventually import eventually, eventually_sync


def counter_reaching(n: int):  # type: ignore[no-untyped-def]
    calls = [0]

    def condition() -> int | None:
        calls[0] += 1
        return calls[0] if calls[0] >= n else None
    return condition


async def test_returns_the_first_truthy_value_sync_or_async_condition() -> None:
    assert await eventually(counter_reaching(3), interval_s=0) == 3
    inner = counter_reaching(2)

    async def async_condition() -> int | None:
        return inner()
    assert await eventually(async_condition, interval_s=0) == 2
    assert eventually_sync(counter_reaching(4), interval_s=0) == 4


async def test_a_deadline_fails_naming_what_was_awaited_and_the_last_ignored_error() -> None:
    def starting() -> bool:
        raise ConnectionError("not listening yet")
    with pytest.raises(AssertionError, match=r"timed out after 0.05s waiting for the server .*not listening yet"):
        await eventually(starting, timeout_s=0.05, interval_s=0.01, what="the server", ignoring=(ConnectionError,))
    with pytest.raises(AssertionError, match="waiting for nothing"):
        eventually_sync(lambda: False, timeout_s=0.05, interval_s=0.01, what="nothing")


async def test_an_unexpected_error_propagates_at_once() -> None:
    def broken() -> bool:
        raise KeyError("bug")
    with pytest.raises(KeyError):
        await eventually(broken, timeout_s=10, ignoring=(ConnectionError,))
