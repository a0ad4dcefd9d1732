"""Request bodies as Hail's client builds them (aioclient._create_job / _batch_spec)."""

from __future__ import annotations

from typing import Any


def job(job_id: int, *, parents: list[int] | None = None, absolute_parents: list[int] | None = None,
        **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "always_run": False, "n_max_attempts": 20, "always_copy_output": False, "job_id": job_id,
        "absolute_parent_ids": absolute_parents or [], "in_update_parent_ids": parents or [],
        "process": {"command": ["echo", str(job_id)], "image": "busybox", "type": "docker"},
        "absolute_job_group_id": 0,
    }
    spec.update(extra)
    return spec


def batch(n_jobs: int, token: str = "tok-1", n_job_groups: int = 0, **extra: Any) -> dict[str, Any]:
    return {"billing_project": "alice-project", "n_jobs": n_jobs, "n_job_groups": n_job_groups, "token": token,
            **extra}


def dag(n: int) -> list[dict[str, Any]]:
    """A chain-ish DAG: every job after the first depends on its predecessor."""
    return [job(i, parents=[i - 1] if i > 1 else []) for i in range(1, n + 1)]
