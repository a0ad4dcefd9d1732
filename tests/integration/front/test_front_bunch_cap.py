"""One big request must not stall everyone: a cap on specs per request (Hail's client's 1,024), and
the checking, planning and encoding of a big bunch off the event loop.

How long /healthcheck takes meanwhile is measured by tests/bench/bench_front_stall.py (speed is a
benchmark's business, not a test's); here: the cap's answer, and on which thread the work runs.
"""

from __future__ import annotations

import threading

import pytest
from front_specs import batch, job

from services.front import specs, submission
from services.front.specs import MAX_SPECS_PER_REQUEST

pytestmark = pytest.mark.postgres


async def test_a_bunch_over_the_cap_gets_413_stating_it(front):
    n = MAX_SPECS_PER_REQUEST + 1
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(n), "bunch": [job(i) for i in range(1, n + 1)], "job_groups": []})
    assert r.status_code == 413, r.text
    assert "at most 1024" in r.json()["message"] and f"holds {n}" in r.json()["message"]
    assert await front.sql("SELECT count(*) FROM front_batches") == [(0,)]


async def test_job_groups_count_toward_the_cap(front):
    groups = [{"job_group_id": g} for g in range(1, 11)]
    jobs = [job(i) for i in range(1, MAX_SPECS_PER_REQUEST - 8)]  # 1015 jobs + 10 groups
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(len(jobs), n_job_groups=len(groups)), "bunch": jobs, "job_groups": groups})
    assert r.status_code == 413, r.text


async def test_the_cap_applies_to_every_bunch_route(front):
    n = MAX_SPECS_PER_REQUEST + 1
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(n, n_job_groups=n))).json()
    for path, body in ((f"/batches/{b['id']}/updates/1/jobs/create", [job(i) for i in range(1, n + 1)]),
                       (f"/batches/{b['id']}/jobs/create", [job(i) for i in range(1, n + 1)]),
                       (f"/batches/{b['id']}/updates/1/job-groups/create",
                        [{"job_group_id": g} for g in range(1, n + 1)]),
                       (f"/batches/{b['id']}/update-fast",
                        {"update": {"token": "u", "n_jobs": n}, "bunch": [job(i) for i in range(1, n + 1)]})):
        r = await front.client.post(f"/api/v1alpha{path}", json=body)
        assert r.status_code == 413 and "at most 1024" in r.json()["message"], (path, r.text)


async def test_a_full_bunch_is_accepted_and_checked_planned_and_encoded_off_the_event_loop(front, monkeypatch):
    loop_thread = threading.get_ident()
    threads: dict[str, set[int]] = {"parse": set(), "plan": set(), "encode": set()}

    def recording(kind, fn):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            threads[kind].add(threading.get_ident())
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(specs, "parse_job", recording("parse", specs.parse_job))
    monkeypatch.setattr(submission, "plan_jobs", recording("plan", submission.plan_jobs))
    monkeypatch.setattr(front.deps.publisher, "encode", recording("encode", front.deps.publisher.encode))
    n = MAX_SPECS_PER_REQUEST
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(n), "bunch": [job(i) for i in range(1, n + 1)], "job_groups": []})
    assert r.status_code == 200, r.text
    for kind, seen in threads.items():
        assert seen and loop_thread not in seen, (kind, seen, loop_thread)
    assert len([e for e in await front.events() if type(e).__name__ == "JobCreated"]) == n
