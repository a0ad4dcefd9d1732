"""squall's producer client: build a batch of jobs with dependencies, submit it, wait, cancel, read logs.

It speaks the front end's Hail-compatible REST API. Runnable example (a local stack from
`squall up`, or SQUALL_API_URL and SQUALL_TOKEN set)::

    import asyncio
    from events.client import SquallClient

    async def main() -> None:
        async with SquallClient.connect() as client:
            batch = client.new_batch(attributes={"name": "hello"})
            hello = batch.add_job("busybox", ["echo", "hello"], name="hello")
            batch.add_job("busybox", ["echo", "world"], name="world", parents=[hello], cpu="250m")
            submitted = await batch.submit()
            status = await submitted.wait(progress=True)
            print(status["state"], await submitted.log(hello.job_id))

    asyncio.run(main())

`await batch.estimate(duration_s=600)` instead of `submit()` answers what the batch would cost if
each job ran that long (POST /api/v1alpha/batches/estimate), submitting nothing.

Submission follows Hail's client: specs go in bunches of at most 1024 specs and under 1 MiB;
one bunch uses create-fast, more use create + up to 6 bunches in parallel + commit. Every
request carries idempotency tokens, so retries after a timeout or a 5xx never duplicate jobs.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ApiError",
    "BatchBuilder",
    "ClientSettings",
    "JobRef",
    "SettingsError",
    "SquallClient",
    "SubmittedBatch",
    "load_settings",
]

MAX_BUNCH_SIZE = 1024
MAX_BUNCH_BYTES = 1024 * 1024
PARALLEL_BUNCHES = 6
_RETRYABLE = {408, 429, 500, 502, 503, 504}
_COMPLETE_JOB_STATES = {"Success", "Failed", "Error", "Cancelled"}


class SettingsError(RuntimeError):
    """The API URL or token is not configured; the message says where to set it."""


class ApiError(RuntimeError):
    """The front end refused a request; `status` is the HTTP status, `message` its explanation."""

    def __init__(self, status: int, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ClientSettings:
    api_url: str
    token: str
    billing_project: str | None = None


def load_settings(api_url: str | None = None, token: str | None = None, billing_project: str | None = None,
                  *, env: dict[str, str] | None = None, home: Path | None = None) -> ClientSettings:
    """Explicit values first, then SQUALL_API_URL / SQUALL_TOKEN / SQUALL_BILLING_PROJECT, then the
    local stack's state file ($SQUALL_HOME/stack.json, default ~/.squall/stack.json)."""
    environ = os.environ if env is None else env
    state_home = home or Path(environ.get("SQUALL_HOME") or Path.home() / ".squall")
    stack: dict[str, Any] = {}
    state_file = state_home / "stack.json"
    if state_file.is_file():
        try:
            stack = json.loads(state_file.read_text())
        except ValueError as exc:
            raise SettingsError(f"{state_file} is not valid JSON ({exc}); rerun `squall up` or delete it") from exc
    url = api_url or environ.get("SQUALL_API_URL") or stack.get("api_url")
    tok = token or environ.get("SQUALL_TOKEN") or stack.get("token")
    if not url:
        raise SettingsError(f"no API URL: pass --api-url, set SQUALL_API_URL, or start a local stack "
                            f"(`squall up` writes {state_file})")
    if not tok:
        raise SettingsError("no token: pass --token, set SQUALL_TOKEN (`squall user create NAME` prints one), "
                            f"or start a local stack ({state_file})")
    project = billing_project or environ.get("SQUALL_BILLING_PROJECT") or stack.get("billing_project")
    return ClientSettings(api_url=url.rstrip("/"), token=tok, billing_project=project)


@dataclass(frozen=True)
class JobRef:
    """A job added to a batch; `job_id` is its id in the batch once submitted (1-based)."""

    index: int  # 1-based position in the builder (the update-relative id)
    name: str | None
    batch: BatchBuilder = field(repr=False, compare=False)

    @property
    def job_id(self) -> int:
        if self.batch.start_job_id is None:
            raise RuntimeError("the batch is not submitted yet; job ids are known after submit()")
        return self.batch.start_job_id + self.index - 1


class SquallClient:
    def __init__(self, settings: ClientSettings, *, timeout_s: float = 30.0, max_retries: int = 8,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(base_url=settings.api_url, timeout=timeout_s, transport=transport,
                                       headers={"Authorization": f"Bearer {settings.token}"})

    @classmethod
    def connect(cls, api_url: str | None = None, token: str | None = None, billing_project: str | None = None,
                **kw: Any) -> SquallClient:
        return cls(load_settings(api_url, token, billing_project), **kw)

    async def __aenter__(self) -> SquallClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                      params: dict[str, Any] | None = None) -> httpx.Response:
        """One API call, retried on 408/429/5xx and connection errors (requests are idempotent)."""
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._http.request(method, path, json=json_body, content=content, params=params,
                                                    headers=headers)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in _RETRYABLE or attempt == self.max_retries:
                    raise ApiError(response.status_code, _message(response), method, path)
            await asyncio.sleep(min(0.1 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    def new_batch(self, *, billing_project: str | None = None, attributes: dict[str, str] | None = None,
                  cancel_after_n_failures: int | None = None,
                  retry_policy: dict[str, Any] | None = None) -> BatchBuilder:
        """`retry_policy`: the default for the batch's jobs (README, "Retry policies")."""
        project = billing_project or self.settings.billing_project
        if not project:
            raise SettingsError("no billing project: pass billing_project=, set SQUALL_BILLING_PROJECT, or use "
                                "the local stack's default")
        return BatchBuilder(self, project, attributes or {}, cancel_after_n_failures, retry_policy)

    def batch(self, batch_id: int) -> SubmittedBatch:
        return SubmittedBatch(self, batch_id)

    async def list_batches(self, q: str | None = None) -> list[dict[str, Any]]:
        params = {"q": q} if q is not None else None
        return list((await self.request("GET", "/api/v1alpha/batches", params=params)).json()["batches"])


class BatchBuilder:
    """Jobs to submit together. Parents must be added before their children (a DAG by construction)."""

    def __init__(self, client: SquallClient, billing_project: str, attributes: dict[str, str],
                 cancel_after_n_failures: int | None, retry_policy: dict[str, Any] | None = None) -> None:
        self.client = client
        self.billing_project = billing_project
        self.attributes = attributes
        self.cancel_after_n_failures = cancel_after_n_failures
        self.retry_policy = retry_policy
        self.token = secrets.token_urlsafe(32)
        self.specs: list[dict[str, Any]] = []
        self.start_job_id: int | None = None

    def add_job(self, image: str, command: Sequence[str], *, name: str | None = None,
                parents: Sequence[JobRef] = (), cpu: str | None = None, memory: str | None = None,
                storage: str | None = None, env: dict[str, str] | None = None, always_run: bool = False,
                n_max_attempts: int | None = None, timeout_s: float | None = None,
                attributes: dict[str, str] | None = None, network: str | None = None,
                regions: Sequence[str] | None = None, retry_policy: dict[str, Any] | None = None) -> JobRef:
        if self.start_job_id is not None:
            raise RuntimeError("this batch is already submitted; start a new batch")
        for parent in parents:
            if parent.batch is not self:
                raise ValueError(f"parent {parent} belongs to another batch")
        index = len(self.specs) + 1
        spec: dict[str, Any] = {
            "job_id": index, "always_run": always_run, "absolute_job_group_id": 0,
            "in_update_parent_ids": sorted({p.index for p in parents}),
            "process": {"type": "docker", "image": image, "command": list(command)},
        }
        resources = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("storage", storage)) if v is not None}
        if resources:
            spec["resources"] = resources
        attrs = dict(attributes or {})
        if name is not None:
            attrs["name"] = name
        optional = {"attributes": attrs or None, "n_max_attempts": n_max_attempts, "timeout": timeout_s,
                    "network": network, "regions": list(regions) if regions else None, "retry_policy": retry_policy,
                    "env": [{"name": k, "value": v} for k, v in env.items()] if env else None}
        spec.update({k: v for k, v in optional.items() if v is not None})
        self.specs.append(spec)
        return JobRef(index=index, name=name, batch=self)

    def _batch_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"billing_project": self.billing_project, "token": self.token,
                                "n_jobs": len(self.specs), "n_job_groups": 0, "attributes": self.attributes}
        if self.cancel_after_n_failures is not None:
            spec["cancel_after_n_failures"] = self.cancel_after_n_failures
        if self.retry_policy is not None:
            spec["retry_policy"] = self.retry_policy
        return spec

    async def estimate(self, duration_s: float, job_durations_s: dict[int, float] | None = None) -> dict[str, Any]:
        """What the batch would cost if each job ran `duration_s` (or its own entry of `job_durations_s`,
        by job index): POST /batches/estimate for each bunch, added up. Submits nothing."""
        overrides = job_durations_s or {}
        parts = []
        for bunch in _bunches([json.dumps(s, separators=(",", ":")).encode() for s in self.specs]) or [[]]:
            ids = [json.loads(spec)["job_id"] for spec in bunch]
            body = {"batch": self._batch_spec(), "job_groups": [], "bunch": [json.loads(spec) for spec in bunch],
                    "duration_s": duration_s,
                    "job_durations_s": {str(i): overrides[i] for i in ids if i in overrides}}
            parts.append((await self.client.request("POST", "/api/v1alpha/batches/estimate", json_body=body)).json())
        return _add_estimates(parts)

    async def submit(self) -> SubmittedBatch:
        """Create the batch and commit its jobs; safe to call again after an error (same tokens)."""
        bunches = _bunches([json.dumps(s, separators=(",", ":")).encode() for s in self.specs])
        api = self.client
        if len(bunches) <= 1:
            body = (b'{"batch":' + json.dumps(self._batch_spec()).encode() + b',"job_groups":[],"bunch":['
                    + b",".join(bunches[0] if bunches else []) + b"]}")
            answer = (await api.request("POST", "/api/v1alpha/batches/create-fast", content=body)).json()
            self.start_job_id = int(answer["start_job_id"])
            return SubmittedBatch(api, int(answer["id"]))
        created = (await api.request("POST", "/api/v1alpha/batches/create", json_body=self._batch_spec())).json()
        batch_id, update_id = int(created["id"]), int(created["update_id"])
        url = f"/api/v1alpha/batches/{batch_id}/updates/{update_id}"
        limit = asyncio.Semaphore(PARALLEL_BUNCHES)

        async def send(bunch: list[bytes]) -> None:
            async with limit:
                await api.request("POST", f"{url}/jobs/create", content=b"[" + b",".join(bunch) + b"]")

        await asyncio.gather(*(send(b) for b in bunches))
        committed = (await api.request("PATCH", f"{url}/commit")).json()
        self.start_job_id = int(committed["start_job_id"])
        return SubmittedBatch(api, batch_id)


def _add_estimates(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One estimate from the estimates of a batch's bunches (costs and usage add up)."""
    by_resource: dict[str, float] = {}
    for part in parts:
        for entry in part["cost_breakdown"]:
            by_resource[entry["resource"]] = by_resource.get(entry["resource"], 0.0) + entry["cost"]
    cost = sum(part["cost"] for part in parts)
    project = dict(parts[0]["billing_project"])
    limit, accrued = project["limit"], project["accrued_cost"]
    project["within_limit"] = limit is None or accrued + cost < limit
    return {"n_jobs": sum(p["n_jobs"] for p in parts), "msec_mcpu": sum(p["msec_mcpu"] for p in parts), "cost": cost,
            "cost_breakdown": [{"resource": r, "cost": c} for r, c in sorted(by_resource.items())],
            "jobs": [job for p in parts for job in p["jobs"]], "billing_project": project}


def _bunches(specs: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for spec in specs:
        if current and (len(current) >= MAX_BUNCH_SIZE or size + len(spec) + 1 >= MAX_BUNCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(spec)
        size += len(spec) + 1
    if current:
        out.append(current)
    return out


class SubmittedBatch:
    def __init__(self, client: SquallClient, batch_id: int) -> None:
        self.client = client
        self.id = batch_id

    async def status(self) -> dict[str, Any]:
        return dict((await self.client.request("GET", f"/api/v1alpha/batches/{self.id}")).json())

    async def jobs(self, q: str | None = None) -> list[dict[str, Any]]:
        """Every job of the batch (all pages), by job id."""
        out: list[dict[str, Any]] = []
        last: int | None = None
        while True:
            params: dict[str, Any] = {"recursive": "true"}
            if q:
                params["q"] = q
            if last is not None:
                params["last_job_id"] = last
            page = (await self.client.request("GET", f"/api/v1alpha/batches/{self.id}/job-groups/0/jobs",
                                              params=params)).json()
            out.extend(page["jobs"])
            last = page.get("last_job_id")
            if last is None:
                return out

    async def job(self, job_id: int) -> dict[str, Any]:
        return dict((await self.client.request("GET", f"/api/v1alpha/batches/{self.id}/jobs/{job_id}")).json())

    async def log(self, job_id: int, step: str = "main", attempt_id: str | None = None) -> str:
        params = {"attempt_id": attempt_id} if attempt_id else None
        response = await self.client.request("GET", f"/api/v1alpha/batches/{self.id}/jobs/{job_id}/log/{step}",
                                             params=params)
        return response.content.decode(errors="replace")

    async def cancel(self) -> None:
        await self.client.request("PATCH", f"/api/v1alpha/batches/{self.id}/cancel")

    async def rerun_failed(self) -> dict[str, Any]:
        """Copy every job that ended Failed, Error or Cancelled into one new update of this batch.

        Answers `{update_id, start_job_id, n_jobs, job_ids: {"old": new}, skipped_job_ids}`; ApiError
        400 when there is nothing to re-run. A token makes the retries of this one call safe.
        """
        body = {"token": f"rerun-{secrets.token_urlsafe(16)}"}
        return dict((await self.client.request("POST", f"/api/v1alpha/batches/{self.id}/rerun-failed",
                                               json_body=body)).json())

    async def delete(self) -> None:
        await self.client.request("DELETE", f"/api/v1alpha/batches/{self.id}")

    async def wait(self, *, progress: bool = False, poll_max_s: float = 2.0,
                   timeout_s: float | None = None) -> dict[str, Any]:
        """Poll until the batch is complete; with progress=True show a rich progress bar."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        delay = 0.05
        bar = _ProgressBar(self.id) if progress else None
        try:
            while True:
                status = await self.status()
                if bar is not None:
                    bar.update(status)
                if status["complete"]:
                    return status
                if deadline is not None and loop.time() >= deadline:
                    raise TimeoutError(f"batch {self.id} is not complete after {timeout_s} s "
                                       f"({status['n_completed']}/{status['n_jobs']} jobs done)")
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, poll_max_s)
        finally:
            if bar is not None:
                bar.stop()


class _ProgressBar:
    def __init__(self, batch_id: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("batch {task.fields[batch_id]} [{task.fields[state]}]"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn())
        self._task = self._progress.add_task("wait", total=None, batch_id=batch_id, state="submitted")
        self._progress.start()

    def update(self, status: dict[str, Any]) -> None:
        self._progress.update(self._task, total=status["n_jobs"], completed=status["n_completed"],
                              state=status["state"])

    def stop(self) -> None:
        self._progress.stop()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)
