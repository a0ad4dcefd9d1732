"""`squall user create NAME [--billing-project BP] [--operator]`: a user with a new bearer token (printed once)."""

from __future__ import annotations

import asyncio

import psycopg
import typer

from services.cli import app
from services.front.errors import InvalidRequest
from services.front.server import apply_migrations
from services.front.users import create_user

user_app = typer.Typer(no_args_is_help=True, help="Users and their tokens.")
app.add_typer(user_app, name="user")


@user_app.command("create")
def create(name: str = typer.Argument(..., help="user name (lowercase letters, digits, - and _)"),
           billing_project: str | None = typer.Option(None, "--billing-project",
                                                      help="make the user a member (default: a project named NAME)"),
           operator: bool = typer.Option(False, "--operator",
                                         help="let the user see the fleet (the web UI's instances page)"),
           database_url: str | None = typer.Option(None, "--database-url", envvar="SQUALL_DATABASE_URL",
                                                   help="PostgreSQL of the front end (SQUALL_DATABASE_URL)")) -> None:
    """Create a user (or add a token to an existing one) and print the token."""
    if not database_url:
        typer.echo("error: pass --database-url postgresql://... or set SQUALL_DATABASE_URL", err=True)
        raise typer.Exit(2)
    url = database_url

    async def go() -> str:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return (await create_user(conn, name, billing_project, operator=operator)).token

    try:
        apply_migrations(url)
        token = asyncio.run(go())
    except InvalidRequest as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except psycopg.OperationalError as exc:
        typer.echo(f"error: cannot reach PostgreSQL at --database-url: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(token)
