"""run_process, the one way every process's __main__ runs: its exit statuses, and SIGTERM reaching
the process's `stop` event (a real signal to this process)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from events.errors import LogError
from events.process.config import ConfigError
from events.process.run import EXIT_REFUSED, run_process
from events.process.signals import cancel_when_stopped


class HostNotReady(Exception):
    pass


def test_the_status_is_mains_or_zero() -> None:
    async def seven(stop: asyncio.Event) -> int:
        return 7

    async def nothing(stop: asyncio.Event) -> None:
        return None

    assert run_process(seven, prog="p") == 7
    assert run_process(nothing, prog="p") == 0


@pytest.mark.parametrize("error", [ConfigError("--bootstrap is missing"), LogError("--bootstrap is missing"),
                                   HostNotReady("--bootstrap is missing")])
def test_an_expected_failure_exits_2_naming_the_process(error: Exception,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    async def fails(stop: asyncio.Event) -> None:
        raise error

    assert run_process(fails, prog="python -m x", errors=(HostNotReady,)) == EXIT_REFUSED
    assert capsys.readouterr().err == "python -m x: error: --bootstrap is missing\n"


def test_anything_else_is_a_bug_and_keeps_its_traceback() -> None:
    async def fails(stop: asyncio.Event) -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_process(fails, prog="p")


def test_sigterm_sets_stop() -> None:
    async def until_stopped(stop: asyncio.Event) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 10)
        return 3

    assert run_process(until_stopped, prog="p") == 3


def test_cancel_when_stopped_cancels_a_loop_that_stops_by_cancellation() -> None:
    async def scenario() -> tuple[object, object, bool]:
        stop = asyncio.Event()
        forever = asyncio.create_task(asyncio.Event().wait())
        asyncio.get_running_loop().call_soon(stop.set)
        cancelled = await cancel_when_stopped(forever, stop)

        async def finishes() -> str:
            return "done"

        finished = await cancel_when_stopped(asyncio.create_task(finishes()), asyncio.Event())
        return cancelled, finished, forever.cancelled()

    assert asyncio.run(scenario()) == (None, "done", True)
