"""`squall submit | wait | batch | logs | cancel | rerun-failed`: the producer client (events.client) on the command line.

The API URL and token come from --api-url/--token, else SQUALL_API_URL/SQUALL_TOKEN, else the
local stack's state file ($SQUALL_HOME/stack.json, written by `squall up`).

A batch description for `squall submit` (YAML or JSON); jobs name their parents by name::

    billing_project: alice        # optional: defaults to the stack's / SQUALL_BILLING_PROJECT
    attributes: {name: hello}
    jobs:
      - name: hello
        image: busybox
        command: [echo, hello]
      - name: world
        image: busybox
        command: [sh, -c, "echo world"]
        parents: [hello]
        cpu: 250m                  # also: memory, storage, env {K: V}, always_run, n_max_attempts, timeout,
                                   # retry_policy (its fields over the batch's)
        expected_duration: 10m     # only for `squall submit --estimate` (services/cli/estimate.py)
    retry_policy: {oom_memory_multiplier: 2, oom_max_memory: 8Gi}   # optional: the jobs' default
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from rich.console import Console
from rich.table import Table

from events.client import ApiError, BatchBuilder, JobRef, SettingsError, SquallClient, load_settings
from services.cli import app
from services.cli.estimate import DurationError, job_durations, parse_duration_s, print_estimate

console = Console()
T = TypeVar("T")

ApiUrl = typer.Option(None, "--api-url", help="front end URL (SQUALL_API_URL, or the local stack's)")
Token = typer.Option(None, "--token", help="bearer token (SQUALL_TOKEN, or the local stack's)")
_JOB_KEYS = {"name", "image", "command", "parents", "cpu", "memory", "storage", "env", "always_run",
             "n_max_attempts", "timeout", "attributes", "network", "regions", "retry_policy", "expected_duration"}
_BATCH_KEYS = ("billing_project", "attributes", "cancel_after_n_failures", "retry_policy", "jobs")


class DescriptionError(ValueError):
    """The batch description file is malformed; the message names the job and key."""


def _run(api_url: str | None, token: str | None, action: Callable[[SquallClient], Awaitable[T]],
         billing_project: str | None = None) -> T:
    async def go() -> T:
        async with SquallClient(load_settings(api_url, token, billing_project)) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except (SettingsError, ApiError, DescriptionError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def build_batch(client: SquallClient, description: dict[str, Any]) -> BatchBuilder:
    """A BatchBuilder from a parsed batch description (see the module docstring)."""
    if not isinstance(description, dict) or not isinstance(description.get("jobs"), list):
        raise DescriptionError("the description must be a mapping with a 'jobs' list")
    unknown = set(description) - set(_BATCH_KEYS)
    if unknown:
        raise DescriptionError(f"unknown top-level key {sorted(unknown)[0]!r}; allowed: {', '.join(_BATCH_KEYS)}")
    batch = client.new_batch(billing_project=description.get("billing_project"),
                             attributes={str(k): str(v) for k, v in (description.get("attributes") or {}).items()},
                             cancel_after_n_failures=description.get("cancel_after_n_failures"),
                             retry_policy=description.get("retry_policy"))
    by_name: dict[str, JobRef] = {}
    for i, job in enumerate(description["jobs"]):
        where = f"jobs[{i}]" + (f" ({job.get('name')})" if isinstance(job, dict) and job.get("name") else "")
        if not isinstance(job, dict) or "image" not in job or "command" not in job:
            raise DescriptionError(f"{where}: each job needs 'image' and 'command'")
        bad = set(job) - _JOB_KEYS
        if bad:
            raise DescriptionError(f"{where}: unknown key {sorted(bad)[0]!r}; allowed: {', '.join(sorted(_JOB_KEYS))}")
        command = job["command"]
        if isinstance(command, str):
            command = ["sh", "-c", command]
        parents = []
        for parent in job.get("parents") or []:
            if parent not in by_name:
                raise DescriptionError(f"{where}: parent {parent!r} is not an earlier job's name")
            parents.append(by_name[parent])
        ref = batch.add_job(
            str(job["image"]), [str(c) for c in command], name=job.get("name"), parents=parents,
            cpu=_opt_str(job.get("cpu")), memory=_opt_str(job.get("memory")), storage=_opt_str(job.get("storage")),
            env={str(k): str(v) for k, v in (job.get("env") or {}).items()} or None,
            always_run=bool(job.get("always_run", False)), n_max_attempts=job.get("n_max_attempts"),
            timeout_s=job.get("timeout"), attributes=job.get("attributes"), network=job.get("network"),
            regions=job.get("regions"), retry_policy=job.get("retry_policy"))
        if job.get("name"):
            if job["name"] in by_name:
                raise DescriptionError(f"{where}: another job is already named {job['name']!r}")
            by_name[job["name"]] = ref
    return batch


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _load(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text()
    except OSError as exc:
        raise DescriptionError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise DescriptionError(f"{file} is not valid {'JSON' if file.suffix == '.json' else 'YAML'}: {exc}") from exc
    return data  # type: ignore[no-any-return]


@app.command()
def submit(file: Path = typer.Argument(..., help="batch description (.yaml/.yml/.json)"),
           wait: bool = typer.Option(False, "--wait", help="wait for the batch to complete"),
           billing_project: str | None = typer.Option(None, "--billing-project"),
           estimate: bool = typer.Option(False, "--estimate", help="print what it would cost and submit nothing"),
           duration: str | None = typer.Option(None, "--duration", help="with --estimate: how long each job runs "
                                               "(90s, 10m, 1.5h, 2d; a job's expected_duration wins)"),
           as_json: bool = typer.Option(False, "--json", help="with --estimate: the API's answer as JSON"),
           api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """Submit a batch described in a YAML or JSON file; prints its id (with --estimate: its cost)."""
    try:
        description = _load(file)
    except DescriptionError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if estimate:
        _estimate(description, duration, as_json, billing_project, api_url, token)
        return
    if duration is not None or as_json:
        console.print("[red]error:[/red] --duration and --json go with --estimate")
        raise typer.Exit(2)

    async def go(client: SquallClient) -> dict[str, Any] | None:
        submitted = await build_batch(client, description).submit()
        console.print(f"submitted batch [bold]{submitted.id}[/bold] ({len(description['jobs'])} jobs)")
        return await submitted.wait(progress=True) if wait else None

    status = _run(api_url, token, go, billing_project)
    if status is not None and status["state"] != "success":
        raise typer.Exit(1)


def _estimate(description: dict[str, Any], duration: str | None, as_json: bool, billing_project: str | None,
              api_url: str | None, token: str | None) -> None:
    try:
        own = job_durations(description) if isinstance(description, dict) else {}
        n_jobs = len(description.get("jobs") or []) if isinstance(description, dict) else 0
        if duration is None and len(own) < n_jobs:
            raise DurationError("--estimate needs --duration (how long each job runs), or an expected_duration "
                                "on every job")
        default = parse_duration_s(duration) if duration is not None else 0.0
    except DurationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    answer = _run(api_url, token, lambda c: build_batch(c, description).estimate(default, own), billing_project)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
    else:
        print_estimate(console, answer)


@app.command("wait")
def wait_cmd(batch_id: int = typer.Argument(...), timeout: float | None = typer.Option(None, "--timeout"),
             api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """Wait for a batch to complete (progress bar); exit 0 on success, 1 otherwise."""
    status = _run(api_url, token, lambda c: c.batch(batch_id).wait(progress=True, timeout_s=timeout))
    console.print(f"batch {batch_id}: {status['state']} ({status['n_succeeded']} succeeded, "
                  f"{status['n_failed']} failed, {status['n_cancelled']} cancelled)")
    if status["state"] != "success":
        raise typer.Exit(1)


@app.command("batch")
def batch_cmd(batch_id: int = typer.Argument(...), as_json: bool = typer.Option(False, "--json"),
              api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """A batch's status and its job table."""
    async def go(client: SquallClient) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        submitted = client.batch(batch_id)
        return await submitted.status(), await submitted.jobs()

    status, jobs = _run(api_url, token, go)
    if as_json:
        typer.echo(json.dumps({"batch": status, "jobs": jobs}, indent=2))
        return
    console.print(f"batch [bold]{batch_id}[/bold] {status['state']}  {status['n_completed']}/{status['n_jobs']} "
                  f"complete  created {status['time_created']}  duration {status['duration'] or '-'}")
    table = Table("job", "name", "state", "exit code", "duration (ms)")
    for job in jobs:
        table.add_row(str(job["job_id"]), job["name"] or "", job["state"],
                      "" if job["exit_code"] is None else str(job["exit_code"]),
                      "" if job["duration"] is None else str(job["duration"]))
    console.print(table)


@app.command()
def logs(batch_id: int = typer.Argument(...), job_id: int = typer.Argument(...),
         step: str = typer.Option("main", "--step", help="input | main | output"),
         attempt: str | None = typer.Option(None, "--attempt", help="attempt id (default: the latest)"),
         api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """Print a job step's log (the output so far while it runs)."""
    typer.echo(_run(api_url, token, lambda c: c.batch(batch_id).log(job_id, step, attempt)), nl=False)


@app.command()
def cancel(batch_id: int = typer.Argument(...), api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """Cancel a batch: jobs not yet running never run; running ones are killed (always_run jobs still run)."""
    _run(api_url, token, lambda c: c.batch(batch_id).cancel())
    console.print(f"batch {batch_id}: cancel requested")


@app.command("rerun-failed")
def rerun_failed(batch_id: int = typer.Argument(...),
                 wait: bool = typer.Option(False, "--wait", help="wait for the batch to complete again"),
                 as_json: bool = typer.Option(False, "--json", help="print the API's answer as JSON"),
                 api_url: str | None = ApiUrl, token: str | None = Token) -> None:
    """Re-run the jobs of a batch that ended Failed, Error or Cancelled, as one new update.

    Their copies keep their dependencies on each other; parents that succeeded count as done.
    Prints each old job id with its copy's id; exits 2 when there is nothing to re-run, and with
    --wait 1 when a copy did not succeed (the batch itself keeps its old failures, as in Hail).
    """
    async def go(client: SquallClient) -> tuple[dict[str, Any], bool]:
        submitted = client.batch(batch_id)
        answer = await submitted.rerun_failed()
        if as_json:
            typer.echo(json.dumps(answer, indent=2))
        else:
            _print_rerun(batch_id, answer)
        if not wait:
            return answer, True
        await submitted.wait(progress=not as_json)
        copies = set(answer["job_ids"].values())
        states = {j["job_id"]: j["state"] for j in await submitted.jobs() if j["job_id"] in copies}
        if not as_json:
            console.print(f"re-run of batch {batch_id}: " + ", ".join(
                f"{n} {state}" for state, n in sorted(Counter(states.values()).items())))
        return answer, all(state == "Success" for state in states.values())

    _answer, succeeded = _run(api_url, token, go)
    if not succeeded:
        raise typer.Exit(1)


def _print_rerun(batch_id: int, answer: dict[str, Any]) -> None:
    console.print(f"batch [bold]{batch_id}[/bold]: update {answer['update_id']} re-runs {answer['n_jobs']} jobs")
    table = Table("job", "re-run as")
    for old, new in answer["job_ids"].items():
        table.add_row(old, str(new))
    console.print(table)
    if answer.get("skipped_job_ids"):
        console.print(f"not re-run (their job group is cancelled): {answer['skipped_job_ids']}")
