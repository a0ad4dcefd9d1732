"""The demo batch `squall demo` submits: a small genomics-shaped DAG that shows squall's semantics.

    prepare ─┬─ shard-1 ─┐
             ├─ shard-2 ─┼─ merge
             ├─ shard-3 ─┘
             └─ flaky-step (exits 3) ─┬─ cleanup (always_run: runs anyway)
                                      └─ report  (cancelled: its parent failed)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

BUSYBOX = "localhost/busybox:latest"
PYTHON = "localhost/debian-python3:bookworm"


def _job(job_id: int, name: str, image: str, command: list[str], parents: list[int] | None = None,
         always_run: bool = False) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "process": {"type": "docker", "image": image, "command": command},
        "in_update_parent_ids": parents or [],
        "always_run": always_run,
        "attributes": {"name": name},
        "resources": {"cpu": "0.25", "memory": "lowmem"},
        "n_max_attempts": 3,
    }


def demo_jobs() -> list[dict[str, Any]]:
    shard = ("import hashlib, os; s = int(os.environ['SHARD']); "
             "d = hashlib.sha256(str(sum(i * i for i in range(s * 200000))).encode()).hexdigest(); "
             "print(f'shard {s}: {d[:16]}')")
    jobs = [_job(1, "prepare", BUSYBOX, ["sh", "-c", "echo preparing reference; sleep 1; echo done"])]
    for i in (1, 2, 3):
        j = _job(1 + i, f"shard-{i}", PYTHON, ["python3", "-c", shard], parents=[1])
        j["env"] = [{"name": "SHARD", "value": str(i)}]
        jobs.append(j)
    jobs.append(_job(5, "merge", BUSYBOX, ["sh", "-c", "echo merging 3 shards"], parents=[2, 3, 4]))
    jobs.append(_job(6, "flaky-step", BUSYBOX, ["sh", "-c", "echo 'something went wrong' >&2; exit 3"], parents=[1]))
    jobs.append(_job(7, "cleanup", BUSYBOX, ["sh", "-c", "echo cleaning up after flaky-step"], parents=[6],
                     always_run=True))
    jobs.append(_job(8, "report", BUSYBOX, ["sh", "-c", "echo never printed"], parents=[6]))
    return jobs


# what each job must end as: the demo checks squall's semantics, not just that it ran
EXPECTED_STATES = {"prepare": "Success", "shard-1": "Success", "shard-2": "Success", "shard-3": "Success",
                   "merge": "Success", "flaky-step": "Failed", "cleanup": "Success", "report": "Cancelled"}


@dataclass(frozen=True)
class DemoResult:
    batch_id: int
    batch: dict[str, Any]
    jobs: list[dict[str, Any]]

    def unexpected(self) -> dict[str, tuple[str, str]]:
        """Jobs whose final state differs from EXPECTED_STATES: name -> (expected, actual)."""
        return {j["name"]: (EXPECTED_STATES[j["name"]], j["state"]) for j in self.jobs
                if j.get("name") in EXPECTED_STATES and EXPECTED_STATES[j["name"]] != j["state"]}


def run_demo(api_url: str, token: str, billing_project: str, timeout_s: float = 600.0,
             on_progress: Callable[[dict[str, Any]], None] | None = None) -> DemoResult:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{api_url}/api/v1alpha", headers=headers, timeout=30.0) as http:
        jobs = demo_jobs()
        body = {"batch": {"billing_project": billing_project, "token": f"demo-{time.time_ns()}",
                          "n_jobs": len(jobs), "attributes": {"name": "squall-demo"}},
                "bunch": jobs, "job_groups": []}
        resp = http.post("/batches/create-fast", json=body)
        resp.raise_for_status()
        batch_id = int(resp.json()["id"])
        deadline = time.monotonic() + timeout_s
        while True:
            batch = http.get(f"/batches/{batch_id}").raise_for_status().json()
            if on_progress:
                on_progress(batch)
            if batch["complete"]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} not complete after {timeout_s:.0f}s: {batch}")
            time.sleep(0.5)
        listing = http.get(f"/batches/{batch_id}/jobs").raise_for_status().json()
        return DemoResult(batch_id, batch, listing["jobs"])
