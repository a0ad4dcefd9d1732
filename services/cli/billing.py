"""`squall billing-project set-limit BP AMOUNT|none` and `squall billing-project show [BP]`.

A billing project's limit is in USD; once the project's accrued cost reaches it, the front end
answers 403 to new batches and updates in it and cancels its running batches (Hail's billing
limit; services/front/billing.py). Accrued cost counts running attempts up to their workers'
latest billing report, and ended ones start to end.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import typer

from services.cli import app
from services.cli.front_db import DATABASE_URL_OPTION, HOME_OPTION, run_on_front_db
from services.front.billing import billing_projects, parse_limit, set_limit, usd
from services.front.errors import FrontError

billing_app = typer.Typer(no_args_is_help=True, help="Billing projects and their limits.")
app.add_typer(billing_app, name="billing-project")

@billing_app.command("set-limit")
def set_limit_command(billing_project: str = typer.Argument(..., help="the billing project"),
                      amount: str = typer.Argument(..., help="the limit in USD (e.g. 25 or 12.5), or 'none' to remove it"),
                      database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """Set (or with `none`, remove) a billing project's spending limit in USD."""
    try:
        limit = parse_limit(amount, field="AMOUNT")
    except FrontError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc

    async def work(conn: psycopg.AsyncConnection) -> None:
        await set_limit(conn, billing_project, limit)

    run_on_front_db(database_url, work, home)
    typer.echo(f"billing project {billing_project}: limit {usd(limit)}")


@billing_app.command("show")
def show(billing_project: str | None = typer.Argument(None, help="one project (default: every project)"),
         as_json: bool = typer.Option(False, "--json", help="Hail's shape, as GET /api/v1alpha/billing_projects"),
         database_url: str | None = DATABASE_URL_OPTION, home: str | None = HOME_OPTION) -> None:
    """Every billing project (or one) with its members, limit and accrued cost."""

    async def work(conn: psycopg.AsyncConnection) -> list[dict[str, Any]]:
        return await billing_projects(conn, None, billing_project)

    projects = run_on_front_db(database_url, work, home)
    if billing_project is not None and not projects:
        typer.echo(f"error: billing project {billing_project!r} does not exist", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(projects, indent=2))
        return
    for p in projects:
        typer.echo(f"{p['billing_project']}\tlimit {usd(p['limit'])}\taccrued {usd(p['accrued_cost'])}\t"
                   f"users {','.join(p['users'])}")
