"""`squall kafka start|stop|status` and `squall postgres start|stop|status`: the infrastructure
alone, in the same places `squall up` keeps it (<home>/kafka, <home>/postgres)."""

from __future__ import annotations

from pathlib import Path

import typer

from deploy.kafka import KafkaBroker, KafkaDeployError, stack_broker
from deploy.postgres import EmbeddedPostgres, PostgresDeployError
from events.process.config import default_home
from services.cli import app

kafka_app = typer.Typer(no_args_is_help=True, help="The local Apache Kafka broker (single-node KRaft).")
postgres_app = typer.Typer(no_args_is_help=True, help="The local embedded PostgreSQL server.")
app.add_typer(kafka_app, name="kafka")
app.add_typer(postgres_app, name="postgres")

HomeOption = typer.Option(None, "--home", help="state directory (default $SQUALL_HOME or ~/.squall)")
NOT_RUNNING = 3  # the exit code of `status` for a stopped server, as init scripts use


def _home(home: Path | None) -> Path:
    return (home or default_home()).expanduser().resolve()


def _broker(home: Path | None, port: int | None = None, starting: bool = False) -> KafkaBroker:
    """The stack's broker; started secured exactly as `squall up` runs it (the same secrets)."""
    h = _home(home)
    if not starting:
        return KafkaBroker(h / "kafka", port=port)
    broker = stack_broker(h)
    broker.requested_port = port
    return broker


def _postgres(home: Path | None) -> EmbeddedPostgres:
    return EmbeddedPostgres(_home(home) / "postgres")


@kafka_app.command("start")
def kafka_start(home: Path | None = HomeOption,
                port: int | None = typer.Option(None, "--port", help="broker port (default: the previous "
                                                                     "one, else a free one)")) -> None:
    """Start the broker (idempotent: a running one is left alone) and print its bootstrap address."""
    try:
        typer.echo(_broker(home, port, starting=True).start())
    except KafkaDeployError as exc:
        typer.echo(f"kafka did not start: {exc}", err=True)
        raise typer.Exit(1) from exc


@kafka_app.command("stop")
def kafka_stop(home: Path | None = HomeOption) -> None:
    """Stop the broker (clean shutdown; killed after 20 s). Its data stays for the next start."""
    _broker(home).stop()


@kafka_app.command("status")
def kafka_status(home: Path | None = HomeOption) -> None:
    """Print `running <bootstrap>` (exit 0) or `stopped` (exit 3)."""
    broker = _broker(home)
    if not broker.is_running():
        typer.echo("stopped")
        raise typer.Exit(NOT_RUNNING)
    typer.echo(f"running {broker.bootstrap} (data in {broker.data_dir})")


@postgres_app.command("start")
def postgres_start(home: Path | None = HomeOption) -> None:
    """Start the server (idempotent) and print its postgresql:// URL."""
    try:
        typer.echo(_postgres(home).start())
    except PostgresDeployError as exc:
        typer.echo(f"postgres did not start: {exc}", err=True)
        raise typer.Exit(1) from exc


@postgres_app.command("stop")
def postgres_stop(home: Path | None = HomeOption) -> None:
    """Stop the server (fast shutdown). Its data stays for the next start."""
    _postgres(home).stop()


@postgres_app.command("status")
def postgres_status(home: Path | None = HomeOption) -> None:
    """Print `running <url>` (exit 0) or `stopped` (exit 3)."""
    url = _postgres(home).url()
    if url is None:
        typer.echo("stopped")
        raise typer.Exit(NOT_RUNNING)
    typer.echo(f"running {url}")
