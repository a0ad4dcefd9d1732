"""`squall simulate WORKLOAD`: run the fleet-scale simulator on a workload file and print its report."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from services.cli import app


@app.command()
def simulate(
    workload: Path = typer.Argument(..., help="workload YAML (see deploy/workloads/)"),
    seed: int | None = typer.Option(None, "--seed", help="random seed (default: the workload's own)"),
    as_json: bool = typer.Option(False, "--json", help="print the full report as JSON"),
    progress: bool = typer.Option(
        False, "--progress", help="print progress to stderr every 30 s (long runs)"
    ),
) -> None:
    """Simulate scheduling a workload with squall's real fair share, matcher and autoscaler."""
    from services.simulator import WorkloadError, load_workload
    from services.simulator import simulate as run_simulation

    try:
        loaded = load_workload(workload)
    except WorkloadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    report = run_simulation(
        loaded, seed, progress=(lambda line: typer.echo(line, err=True)) if progress else None
    )
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.to_text())
