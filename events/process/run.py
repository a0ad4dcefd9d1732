"""The one way a squall process's `__main__` runs its async main.

    def main(argv=None) -> int:
        args = parser().parse_args(argv)
        return run_process(lambda stop: serve(args, stop), prog="python -m services.x",
                           errors=(PoolConfigError,))

`run_process` sets up logging, runs `main(stop)` in a fresh event loop with `stop` set by SIGTERM
or SIGINT (events/process/signals.py), and turns an expected failure into exit status 2 with its
message on stderr: a setting (`ConfigError`), the log refusing or unreachable (`LogError`), and
whatever `errors` the process adds. The supervisor (deploy/supervisor.py) logs that line and
restarts the process; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable

from events.errors import LogError
from events.process.config import ConfigError
from events.process.signals import stop_on_signals

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXIT_REFUSED = 2  # a setting, the log or the host refused: the message says what to fix

Main = Callable[[asyncio.Event], Awaitable[int | None]]


def run_process(main: Main, *, prog: str, errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run `main(stop)` to the end; returns the process's exit status (main's, or 0, or 2)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)

    async def body() -> int | None:
        return await main(stop_on_signals())

    expected: tuple[type[BaseException], ...] = (ConfigError, LogError, *errors)
    try:
        return asyncio.run(body()) or 0
    except expected as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
