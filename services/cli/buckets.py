"""`squall bucket grant|revoke|list`: which gs:// buckets users' jobs may read and write, and
`squall user set-credentials USER KEYFILE`: the GCS key a user's job files are copied with (real GCS).

Grants name a user or a billing project (every member may use the bucket), as hailtop's
`gcs_bucket_allow_list`; a job naming any other bucket is refused at submit with a 400 naming it.
With the embedded GCS-API server these grants are the whole ACL; with real GCS the user's own
credentials must also allow the access.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import typer

from events.process.config import DEFAULT_SYSTEM_BUCKET
from services.cli import app
from services.cli.front_db import DATABASE_URL_OPTION, run_on_front_db
from services.cli.users import user_app
from services.front import buckets, credentials

bucket_app = typer.Typer(no_args_is_help=True, help="Buckets users' jobs may name in input_files/output_files.")
app.add_typer(bucket_app, name="bucket")

SYSTEM_BUCKET_OPTION = typer.Option(DEFAULT_SYSTEM_BUCKET, "--system-bucket", envvar="SQUALL_SYSTEM_BUCKET",
                                    help="squall's own bucket, which is never granted (SQUALL_SYSTEM_BUCKET)")


def _grantee(user: str | None, billing_project: str | None) -> None:
    if (user is None) == (billing_project is None):
        typer.echo("error: give exactly one of --user USER or --billing-project PROJECT", err=True)
        raise typer.Exit(2)


@bucket_app.command("grant")
def grant(bucket: str = typer.Argument(..., help="the bucket name (without gs://)"),
          user: str | None = typer.Option(None, "--user", help="grant it to this user"),
          billing_project: str | None = typer.Option(None, "--billing-project",
                                                     help="grant it to every member of this billing project"),
          system_bucket: str = SYSTEM_BUCKET_OPTION, database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Let a user's (or a billing project's) jobs read and write gs://BUCKET."""
    _grantee(user, billing_project)
    bucket = bucket.removeprefix("gs://").rstrip("/")

    async def work(conn: psycopg.AsyncConnection) -> bool:
        return await buckets.grant(conn, bucket, user=user, billing_project=billing_project,
                                   system_bucket=system_bucket)

    added = run_on_front_db(database_url, work)
    who = f"user {user}" if user is not None else f"billing project {billing_project}"
    typer.echo(f"gs://{bucket} granted to {who}" + ("" if added else " (already)"))


@bucket_app.command("revoke")
def revoke(bucket: str = typer.Argument(..., help="the bucket name (without gs://)"),
           user: str | None = typer.Option(None, "--user"),
           billing_project: str | None = typer.Option(None, "--billing-project"),
           database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Take a grant back (jobs already submitted keep their access until they end)."""
    _grantee(user, billing_project)
    bucket = bucket.removeprefix("gs://").rstrip("/")

    async def work(conn: psycopg.AsyncConnection) -> bool:
        return await buckets.revoke(conn, bucket, user=user, billing_project=billing_project)

    if not run_on_front_db(database_url, work):
        typer.echo(f"error: no such grant of gs://{bucket}", err=True)
        raise typer.Exit(2)
    typer.echo(f"gs://{bucket} revoked")


@bucket_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json"), database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Every grant: bucket, and the user or billing project it is granted to."""

    async def work(conn: psycopg.AsyncConnection) -> list[buckets.Grant]:
        return await buckets.list_grants(conn)

    grants = run_on_front_db(database_url, work)
    if as_json:
        typer.echo(json.dumps([{"bucket": g.bucket, "user": g.user, "billing_project": g.billing_project,
                                "granted_at": g.granted_at} for g in grants], indent=2))
        return
    if not grants:
        typer.echo("no buckets granted (squall bucket grant BUCKET --user USER)")
    for g in grants:
        typer.echo(f"gs://{g.bucket}\t{g.grantee}")


@user_app.command("set-credentials")
def set_credentials(user: str = typer.Argument(..., help="the user"),
                    keyfile: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                                   help="a GCS service-account key file (JSON)"),
                    database_url: str | None = DATABASE_URL_OPTION) -> None:
    """Store the service-account key the user's job files are copied with on real GCS (never the worker's)."""
    text = keyfile.read_text()

    async def work(conn: psycopg.AsyncConnection) -> str:
        return await credentials.set_credentials(conn, user, text)

    email = run_on_front_db(database_url, work)
    typer.echo(f"user {user}: job files are copied as {email}")
