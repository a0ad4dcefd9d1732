"""Helpers for the end-to-end suite: a running local stack and an HTTP client on its API.

Stacks run isolated workers (each local worker a host of its own: deploy/worker_hosts.py) unless a
test says otherwise or SQUALL_E2E_WORKERS=shared runs the suite on workers sharing this machine.
Where the kernel cannot make worker hosts (not root, no namespaces, no ip/nft) the suite falls back
to shared workers and the isolation tests skip, saying why; never under CI=true, where they fail."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from deploy import stack
from deploy.postgres import create_database
from services.front.stack_user import ensure_stack_user
from tests.eventually import eventually_sync


class StackClient:
    """A running stack and an authenticated HTTP client on its API."""

    def __init__(self, state: stack.StackState) -> None:
        self.state = state
        self.home = Path(state.home)
        self.http = httpx.Client(base_url=f"{state.api_url}/api/v1alpha",
                                 headers={"Authorization": f"Bearer {state.token}"}, timeout=30.0)

    def submit(self, jobs: list[dict[str, Any]], **batch: Any) -> int:
        body = {"batch": {"billing_project": self.state.billing_project, "token": uuid.uuid4().hex,
                          "n_jobs": len(jobs), **batch}, "bunch": jobs, "job_groups": []}
        resp = self.http.post("/batches/create-fast", json=body)
        assert resp.status_code == 200, resp.text
        return int(resp.json()["id"])

    def batch(self, batch_id: int) -> dict[str, Any]:
        return self.http.get(f"/batches/{batch_id}").raise_for_status().json()

    def jobs(self, batch_id: int) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        last: int | None = None
        while True:
            params = {"last_job_id": last} if last else {}
            page = self.http.get(f"/batches/{batch_id}/jobs", params=params).raise_for_status().json()
            out.update({j["job_id"]: j for j in page["jobs"]})
            last = page.get("last_job_id")
            if not last:
                return out

    def wait(self, batch_id: int, timeout_s: float = 240.0) -> dict[str, Any]:
        def complete() -> dict[str, Any] | None:
            b = self.batch(batch_id)
            return b if b["complete"] else None
        try:  # (the front end may be restarting in a drill: an HTTP error is not yet)
            return eventually_sync(complete, timeout_s=timeout_s, interval_s=0.5, what=f"batch {batch_id} to complete",
                                   ignoring=(httpx.HTTPError,))
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.batch(batch_id)}") from None

    def wait_for(self, predicate, timeout_s: float = 120.0, what: str = "condition"):  # type: ignore[no-untyped-def]
        return eventually_sync(predicate, timeout_s=timeout_s, interval_s=0.3, what=what, ignoring=(httpx.HTTPError,))

    def close(self) -> None:
        self.http.close()


def job(job_id: int, command: list[str], parents: list[int] | None = None, image: str = "localhost/busybox:latest",
        **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "process": {"type": "docker", "image": image, "command": command},
            "in_update_parent_ids": parents or [], "resources": {"cpu": "0.25", "memory": "lowmem"}, **extra}


@functools.cache
def isolation_unavailable() -> str | None:
    """Why this machine cannot make worker hosts, or None. Under CI=true always None: there the
    isolation tests must run (and fail loudly if the machine cannot), never skip."""
    if os.environ.get("CI") == "true":
        return None
    if os.geteuid() != 0:
        return "isolated workers need root (network namespaces, a bridge, nftables)"
    missing = [tool for tool in ("ip", "nft", "unshare") if shutil.which(tool) is None]
    if missing:
        return f"isolated workers need {', '.join(missing)} on PATH"
    try:  # the four namespaces a worker host is made of
        probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--uts", "--fork", "true"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot make namespaces: {exc}"
    return None if probe.returncode == 0 else f"the kernel refuses new namespaces: {probe.stderr.strip()}"


def isolated_by_default() -> bool:
    mode = os.environ.get("SQUALL_E2E_WORKERS", "isolated")
    if mode not in ("isolated", "shared"):
        raise ValueError(f"SQUALL_E2E_WORKERS must be isolated or shared, not {mode!r}")
    return mode == "isolated" and isolation_unavailable() is None


def start_stack(kafka_bootstrap: str | None, pg_url: str | None, **kw: Any) -> StackClient:
    """A stack on the given broker and PostgreSQL server (None: its own embedded one, as `squall up`)."""
    if kw.get("simulated_job_ms") is None:
        kw.setdefault("isolated_workers", isolated_by_default())
    # the callback tests' receivers listen on loopback: the stack's front end and callback service
    # (which inherit this environment) must be told to allow it, as an operator would
    os.environ["SQUALL_CALLBACK_ALLOWED_NETWORKS"] = "127.0.0.1/32"
    home = Path(tempfile.mkdtemp(prefix="squall-e2e-"))
    db = create_database(pg_url, f"e2e_{uuid.uuid4().hex[:12]}") if pg_url else None
    state = stack.up(home, bootstrap=kafka_bootstrap, database_url=db, port=stack.free_port(),
                     topic_prefix=f"e{uuid.uuid4().hex[:10]}.", say=lambda m: None,
                     ensure_user=ensure_stack_user, **kw)
    return StackClient(state)


def start_secured_stack(kafka: Any, pg_url: str | None, **kw: Any) -> StackClient:
    """A stack on the session's secured broker (tests/conftest.py secure_kafka): every service
    authenticates as its role and workers use the TLS listener, as with squall up's own broker."""
    return start_stack(kafka.bootstrap, pg_url, kafka_credentials=kafka.credentials,
                       worker_bootstrap=kafka.external_bootstrap, **kw)


def stop_stack(client: StackClient) -> None:
    """Stop the stack; its home (logs, journals) is kept when SQUALL_E2E_KEEP is set, for post-mortems.
    Its worker hosts are destroyed even if `down` fails halfway."""
    from deploy.worker_hosts import WorkerHosts

    client.close()
    try:
        stack.down(client.home, say=lambda m: None)
    finally:
        if os.geteuid() == 0:
            WorkerHosts(client.home).destroy_all()
        if not os.environ.get("SQUALL_E2E_KEEP"):
            shutil.rmtree(client.home, ignore_errors=True)


