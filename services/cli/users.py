"""`squall user ...`: users and their bearer tokens.

    squall user create NAME [--billing-project BP] [--operator] [--expires-in 30d]   a user (or another token)
    squall user new-token NAME [--expires-in 12h]      another token for an existing user
    squall user tokens NAME [--json]                   the user's tokens: id, created, expires, status
    squall user revoke-token NAME TOKEN_ID             refused by the API and the UI from the next request on

A token is printed once, when it is made; listings show its id (the start of its digest) instead.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict
from datetime import UTC, datetime

import psycopg
import typer

from services.cli import app
from services.cli.front_db import DATABASE_URL_OPTION, HOME_OPTION, run_on_front_db
from services.front.users import create_user, list_tokens, new_token, revoke_token

user_app = typer.Typer(no_args_is_help=True, help="Users and their tokens.")
app.add_typer(user_app, name="user")

_DURATION = re.compile(r"([0-9]+)([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EXPIRES_IN_OPTION = typer.Option(None, "--expires-in", help="the token stops working after this long, "
                                 "e.g. 90m, 12h, 30d, 1w (default: never)")


def expires_at_ms(expires_in: str | None, now_ms: int) -> int | None:
    """When a token made now with --expires-in expires; exit 2 naming the option when malformed."""
    if expires_in is None:
        return None
    match = _DURATION.fullmatch(expires_in.strip())
    if match is None or int(match.group(1)) == 0:
        typer.echo(f"error: --expires-in {expires_in!r}: give a positive number and a unit, e.g. 90m, 12h, 30d, 1w",
                   err=True)
        raise typer.Exit(2)
    return now_ms + int(match.group(1)) * _UNIT_S[match.group(2)] * 1000


@user_app.command("create")
def create(name: str = typer.Argument(..., help="user name (lowercase letters, digits, - and _)"),
           billing_project: str | None = typer.Option(None, "--billing-project",
                                                      help="make the user a member (default: a project named NAME)"),
           operator: bool = typer.Option(False, "--operator",
                                         help="let the user see the fleet (the web UI's instances page)"),
           expires_in: str | None = EXPIRES_IN_OPTION,
           database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """Create a user (or add a token to an existing one) and print the token."""
    now = int(time.time() * 1000)
    expires = expires_at_ms(expires_in, now)

    async def work(conn: psycopg.AsyncConnection) -> str:
        return (await create_user(conn, name, billing_project, now_ms=now, operator=operator,
                                  expires_at_ms=expires)).token

    typer.echo(run_on_front_db(database_url, work, home))


@user_app.command("new-token")
def new_token_command(name: str = typer.Argument(..., help="an existing user"),
                      expires_in: str | None = EXPIRES_IN_OPTION,
                      database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """Print another token for an existing user."""
    now = int(time.time() * 1000)
    expires = expires_at_ms(expires_in, now)

    async def work(conn: psycopg.AsyncConnection) -> str:
        return await new_token(conn, name, expires_at_ms=expires, now_ms=now)

    typer.echo(run_on_front_db(database_url, work, home))


@user_app.command("tokens")
def tokens(name: str = typer.Argument(..., help="the user"),
           as_json: bool = typer.Option(False, "--json", help="one JSON list (times in ms since the epoch)"),
           database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """List the user's tokens: id, created, expires, status (active, expired, revoked)."""

    async def work(conn: psycopg.AsyncConnection) -> list:  # type: ignore[type-arg]
        return await list_tokens(conn, name)

    found = run_on_front_db(database_url, work, home)
    if as_json:
        typer.echo(json.dumps([asdict(t) for t in found], indent=2))
        return
    typer.echo("TOKEN_ID\tCREATED\tEXPIRES\tSTATUS")
    for t in found:
        typer.echo(f"{t.token_id}\t{_when(t.created_at)}\t{_when(t.expires_at) if t.expires_at else 'never'}\t"
                   f"{t.status}" + (f" ({_when(t.revoked_at)})" if t.revoked_at else ""))


@user_app.command("revoke-token")
def revoke(name: str = typer.Argument(..., help="the user"),
           token_id: str = typer.Argument(..., help="the token's id, from `squall user tokens NAME`"),
           database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """Revoke one of the user's tokens: the API and the UI refuse it from the next request on."""

    async def work(conn: psycopg.AsyncConnection) -> bool:
        return await revoke_token(conn, name, token_id)

    revoked = run_on_front_db(database_url, work, home)
    typer.echo(f"token {token_id} of {name}: " + ("revoked" if revoked else "was already revoked"))


def _when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
