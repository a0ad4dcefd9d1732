"""The `squall` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="squall: event-sourced batch job execution.")

# Modules that define commands on `app` (or add sub-typers). One line each; keep the list sorted.
_COMMAND_MODULES: list[str] = [
    "services.cli.billing",
    "services.cli.buckets",
    "services.cli.infra",
    "services.cli.jobs",
    "services.cli.replay",
    "services.cli.simulate",
    "services.cli.stack",
    "services.cli.users",
]


@app.callback()
def _root() -> None:
    """squall: event-sourced batch job execution (a Hail Batch-compatible server)."""


def main() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name)
    app()


@app.command()
def version() -> None:
    """Print squall's version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("squall"))
