"""What the CLI commands that write the front end's tables share: the --database-url and --home
options, and running one piece of work on a migrated database with the errors a person can fix
turned into a message and exit code 2.

Without --database-url (or SQUALL_DATABASE_URL) a command uses the database of the local stack
that `squall up` started in --home (default $SQUALL_HOME or ~/.squall), as `squall replay` does, so
`squall user create NAME` works right after `squall up`. A command that does not offer --home
gets the default home.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import typer

from events.process.config import default_home
from services.front.errors import FrontError
from services.front.server import apply_migrations

T = TypeVar("T")

DATABASE_URL_OPTION: Any = typer.Option(None, "--database-url", envvar="SQUALL_DATABASE_URL",
                                        help="PostgreSQL of the front end (SQUALL_DATABASE_URL); "
                                             "default: the local stack's, from `squall up` in --home")
HOME_OPTION: Any = typer.Option(None, "--home", help="state directory of `squall up`, whose database is the "
                                                     "default (default $SQUALL_HOME or ~/.squall)")


def front_database_url(database_url: str | None, home: Path | str | None = None) -> str:
    """--database-url, else the local stack's database; exit 2 saying how to give one."""
    if database_url:
        return database_url
    from deploy.stack import StackState

    where = Path(home).expanduser() if home is not None else default_home().expanduser()
    state = StackState.load(where)
    if state is None:
        typer.echo(f"error: PostgreSQL is not configured: pass --database-url postgresql://... or set "
                   f"SQUALL_DATABASE_URL, or start the local stack with `squall up` (no stack in {where})", err=True)
        raise typer.Exit(2)
    return state.database_url


def run_on_front_db(database_url: str | None, work: Callable[[psycopg.AsyncConnection], Awaitable[T]],
                    home: Path | str | None = None) -> T:
    """Migrate, then run `work(conn)`; no database, an unreachable one or a FrontError exit 2."""
    url = front_database_url(database_url, home)

    async def go() -> T:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await work(conn)

    try:
        apply_migrations(url)
        return asyncio.run(go())
    except FrontError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    except psycopg.OperationalError as exc:
        typer.echo(f"error: cannot reach PostgreSQL at {_redacted(url)}: {exc}", err=True)
        raise typer.Exit(2) from exc


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
