"""What the CLI commands that write the front end's tables share: the --database-url option, and
running one piece of work on a migrated database with the errors a person can fix turned into a
message and exit code 2."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
import typer

from services.front.errors import FrontError
from services.front.server import apply_migrations

T = TypeVar("T")

DATABASE_URL_OPTION: Any = typer.Option(None, "--database-url", envvar="SQUALL_DATABASE_URL",
                                        help="PostgreSQL of the front end (SQUALL_DATABASE_URL)")


def run_on_front_db(database_url: str | None, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
    """Migrate, then run `work(conn)`; a missing URL, an unreachable database or a FrontError exit 2."""
    if not database_url:
        typer.echo("error: pass --database-url postgresql://... or set SQUALL_DATABASE_URL", err=True)
        raise typer.Exit(2)
    url = database_url

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
        typer.echo(f"error: cannot reach PostgreSQL at --database-url: {exc}", err=True)
        raise typer.Exit(2) from exc
