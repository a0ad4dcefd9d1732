"""`squall up`, `squall down`, `squall status`, `squall demo`: the embedded local stack."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from deploy import stack
from events.process.config import default_home
from services.cli import app
from services.front.stack_user import ensure_stack_user

console = Console()
HomeOption = typer.Option(None, "--home", help="state directory (default $SQUALL_HOME or ~/.squall)")


def _home(home: Path | None) -> Path:
    return (home or default_home()).expanduser().resolve()


@app.command()
def up(
    home: Path | None = HomeOption,
    kafka_bootstrap: str | None = typer.Option(None, "--kafka-bootstrap", envvar="SQUALL_KAFKA_BOOTSTRAP",
                                               help="use this Kafka instead of starting one"),
    database_url: str | None = typer.Option(None, "--database-url", envvar="SQUALL_DATABASE_URL",
                                            help="use this PostgreSQL instead of starting one"),
    port: int | None = typer.Option(None, "--port", help="API port (default: the previous one, else a free one)"),
    topic_prefix: str | None = typer.Option(None, "--topic-prefix",
                                            help="prefix of the stack's topics (default: as before, else squall.)"),
    workers: int = typer.Option(1, "--workers", help="local worker instances to keep running"),
    worker_cores: int = typer.Option(2, "--worker-cores"),
    pools: Path | None = typer.Option(None, "--pools", help="pools YAML instead of the default pools (min, max "
                                      "live and max instances, standing workers, look-ahead window; kept for "
                                      "later ups)"),
    zones: str | None = typer.Option(None, "--zones", help="zones for the local workers, each with an optional "
                                     "capacity, e.g. local-a,local-b:2 (kept for later ups)"),
    storage: str = typer.Option("embedded", "--storage",
                                help="embedded: run a GCS-API server (fake-gcs-server) in the state directory; "
                                     "gcs: real GCS with application-default credentials"),
    storage_endpoint: str | None = typer.Option(None, "--storage-endpoint", envvar="SQUALL_STORAGE_ENDPOINT",
                                                help="use the GCS-API server at this URL instead of starting one"),
    system_bucket: str | None = typer.Option(None, "--system-bucket",
                                             help="squall's own bucket for logs and status (default squall-system)"),
    bucket: str | None = typer.Option(None, "--bucket",
                                      help="the default user's bucket for job files (default squall-data)"),
    simulated_workers: int | None = typer.Option(
        None, "--simulated-workers", metavar="JOB_MS",
        help="simulated workers instead of podman ones (load tests): every job succeeds after JOB_MS ms"),
    kafka_credentials: Path | None = typer.Option(
        None, "--kafka-credentials", envvar="SQUALL_KAFKA_CREDENTIALS_DIR",
        help="with --kafka-bootstrap: a directory with admin.json and <role>.json credentials files"),
    kafka_worker_bootstrap: str | None = typer.Option(
        None, "--kafka-worker-bootstrap", help="the listener workers use (default: --kafka-bootstrap)"),
    kafka_tls_everywhere: bool = typer.Option(
        False, "--kafka-tls-everywhere", help="local services use the TLS listener too (default: SCRAM on loopback)"),
    isolated_workers: bool | None = typer.Option(
        None, "--isolated-workers/--shared-workers",
        help="each local worker a host of its own: network, mount and PID namespaces on the fleet LAN "
             "10.213.7.0/25, reaching the control plane over TCP only (default: as the stack was, else shared; "
             "switching needs `squall down` first)"),
    prices: Path | None = typer.Option(
        None, "--prices", help="YAML price table the read model bills with (projections/cost.py; kept for later ups)"),
    billing_interval: float | None = typer.Option(
        None, "--billing-interval", help="seconds between workers' reports that bill running attempts (default 60)"),
    billing_loop_interval: float | None = typer.Option(
        None, "--billing-loop-interval", help="seconds between billing-limit passes of the front end (default 10)"),
) -> None:
    """Start the local stack (idempotent): Kafka, PostgreSQL, the object store, services and local workers."""
    h = _home(home)
    try:
        state = stack.up(h, bootstrap=kafka_bootstrap, database_url=database_url, port=port,
                         topic_prefix=topic_prefix, workers=workers, worker_cores=worker_cores, storage=storage,
                         storage_endpoint=storage_endpoint, system_bucket=system_bucket, bucket=bucket,
                         simulated_job_ms=simulated_workers, kafka_credentials=kafka_credentials,
                         worker_bootstrap=kafka_worker_bootstrap, kafka_tls_everywhere=kafka_tls_everywhere,
                         isolated_workers=isolated_workers, prices=prices, billing_interval_s=billing_interval,
                         billing_loop_interval_s=billing_loop_interval, say=lambda m: console.print(f"  {m}"),
                         pools_file=pools, zones=zones, ensure_user=ensure_stack_user)
    except stack.StackError as exc:
        console.print(f"[red]squall up failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"[green]squall is up[/green]\n  API      {state.api_url}\n  token    {state.token}\n"
                  f"  billing  {state.billing_project}\n  bucket   gs://{state.bucket}"
                  f" (storage {state.storage_endpoint or 'GCS'})\n  UI       {state.api_url}/ui\n"
                  f"  logs     {h / 'logs'}\n  state    {h / stack.STATE_FILE}")


@app.command()
def down(home: Path | None = HomeOption) -> None:
    """Stop the local stack; data stays in the state directory for the next `squall up`."""
    stack.down(_home(home), say=lambda m: console.print(f"  {m}"))


@app.command()
def status(home: Path | None = HomeOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """The local stack: API URL, token, billing project and each component's pid, health, restarts and lag."""
    info = stack.status(_home(home))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        raise typer.Exit(0 if info.get("running") else 3)
    if "api_url" not in info:
        console.print(info["message"])
        raise typer.Exit(3)
    console.print(f"API {info['api_url']}  token {info['token']}  billing project {info['billing_project']}  "
                  f"bucket {info['bucket']}")
    table = Table("component", "pid", "healthy", "restarts", "lag", "host")
    for name, c in info["components"].items():  # type: ignore[attr-defined]
        table.add_row(name, str(c.get("pid") or "-"), "yes" if c.get("healthy") else "[red]no[/red]",
                      str(c.get("restarts", "-")), str(c.get("lag", "-")), "-")
    for w in info.get("workers", []):  # type: ignore[attr-defined]
        host = f"{w['netns']} {w['address']}" if w.get("netns") else "shared"
        table.add_row(f"worker {w['name']}", str(w.get("pid") or "-"), "yes" if w.get("pid") else "[red]no[/red]",
                      str(w.get("restarts", 0)), "-", host)
    console.print(table)
    raise typer.Exit(0 if info.get("running") else 3)


@app.command()
def demo(home: Path | None = HomeOption, timeout: float = typer.Option(600.0, "--timeout")) -> None:
    """Submit the demo DAG batch to the local stack, show live progress and each job's outcome."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from services.demo import EXPECTED_STATES, run_demo

    h = _home(home)
    state = stack.StackState.load(h)
    if state is None:
        console.print("no local stack: run `squall up` first")
        raise typer.Exit(2)
    with Progress(TextColumn("batch {task.fields[batch]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[state]}"), console=console) as progress:
        task = progress.add_task("demo", total=len(EXPECTED_STATES), batch="?", state="submitting")

        def show(batch: dict) -> None:  # type: ignore[type-arg]
            progress.update(task, completed=batch["n_completed"], total=batch["n_jobs"] or None,
                            batch=batch["id"], state=batch["state"])

        result = run_demo(state.api_url, state.token, state.billing_project, timeout_s=timeout, on_progress=show)
    table = Table("job", "name", "state", "exit code", "duration")
    for j in result.jobs:
        table.add_row(str(j["job_id"]), str(j.get("name")), j["state"], str(j.get("exit_code")),
                      str(j.get("duration")))
    console.print(table)
    console.print(f"batch {result.batch_id}: {result.batch['state']} "
                  f"({result.batch['n_succeeded']} succeeded, {result.batch['n_failed']} failed, "
                  f"{result.batch['n_cancelled']} cancelled)")
    wrong = result.unexpected()
    if wrong:
        for name, (expected, actual) in wrong.items():
            console.print(f"[red]{name}: expected {expected}, got {actual}[/red]")
        raise typer.Exit(1)
    console.print("every job ended as the DAG's semantics say: the failure cancelled `report`, "
                  "and the always_run `cleanup` ran anyway.\n"
                  f"Next: squall batch {result.batch_id} | squall logs {result.batch_id} 6 | "
                  f"squall audit {result.batch_id} 8 | open {state.api_url}/ui")


@app.command()
def preempt(instance: str = typer.Argument(..., help="a preemptible local instance (squall status lists them)"),
            home: Path | None = HomeOption) -> None:
    """Preempt a local preemptible instance as a cloud would: it dies whole and the provider records the
    preemption, so its jobs' attempts end `preempted` (what retry_policy.max_preemptions counts)."""
    from services.providers.base import ProviderError
    from services.providers.local import preempt as preempt_instance

    try:
        preempt_instance(_home(home), instance)
    except ProviderError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"preempted {instance}; the autoscaler deactivates it on its next loop")
