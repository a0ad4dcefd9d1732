"""`squall user create NAME [--billing-project BP] [--operator]`: a user with a new bearer token (printed once)."""

from __future__ import annotations

import psycopg
import typer

from services.cli import app
from services.cli.front_db import DATABASE_URL_OPTION, run_on_front_db
from services.front.users import create_user

user_app = typer.Typer(no_args_is_help=True, help="Users and their tokens.")
app.add_typer(user_app, name="user")


@user_app.command("create")
def create(name: str = typer.Argument(..., help="user name (lowercase letters, digits, - and _)"),
           billing_project: str | None = typer.Option(None, "--billing-project",
                                                      help="make the user a member (default: a project named NAME)"),
           operator: bool = typer.Option(False, "--operator",
                                         help="let the user see the fleet (the web UI's instances page)"),
           database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Create a user (or add a token to an existing one) and print the token."""

    async def work(conn: psycopg.AsyncConnection) -> str:
        return (await create_user(conn, name, billing_project, operator=operator)).token

    typer.echo(run_on_front_db(database_url, work))
