"""POST /batches/{id}/rerun-failed against real PostgreSQL: the update it appends and what it answers.

The jobs' end states are seeded into the read model (no resolver runs here); the e2e test
(tests/e2e/test_rerun_and_queries.py) runs the same on the whole stack with real workers.
"""

from __future__ import annotations

import json

import pytest
from front_specs import batch, job

from events.catalog import BatchUpdateCommitted, BatchUpdateCreated, JobCreated

pytestmark = pytest.mark.postgres


async def _create(front, jobs: list[dict], token: str = "b", n_job_groups: int = 0, groups=None) -> int:
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(len(jobs), token=token, n_job_groups=n_job_groups), "bunch": jobs,
        "job_groups": groups or []})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def _ended(front, batch_id: int, states: dict[int, str], parents: dict[int, list[int]], group: int = 0,
                 groups: dict[int, int] | None = None) -> None:
    """Read-model rows as the projection writes them: absolute parent ids, the accepted spec."""
    for job_id, state in states.items():
        spec = job(job_id, attributes={"name": f"j{job_id}"})
        await front.sql(
            'INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, name, "user", billing_project, state, '
            "committed, always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, memory_bytes, "
            "storage_gib, preemptible, time_created) VALUES (%s, %s, %s, 1, %s, 'alice', 'alice-project', %s, true, "
            "false, 20, %s, %s, %s, 1000, 1, 0, true, 1) ON CONFLICT (batch_id, job_id) DO UPDATE SET state = %s",
            (batch_id, job_id, (groups or {}).get(job_id, group), f"j{job_id}", state, parents.get(job_id, []),
             json.dumps({"name": f"j{job_id}"}), json.dumps(spec), state))


async def _rerun(front, batch_id: int, body=None, headers=None):
    kwargs = {} if body is None else {"json": body}
    return await front.client.post(f"/api/v1alpha/batches/{batch_id}/rerun-failed", headers=headers, **kwargs)


async def test_failed_and_cancelled_jobs_are_copied_into_one_update(front):
    # 1 succeeds; 2 (child of 1) fails; 3 (child of 2) is cancelled; 4 (child of 1) succeeds
    batch_id = await _create(front, [job(1), job(2, parents=[1]), job(3, parents=[2]), job(4, parents=[1])])
    await _ended(front, batch_id, {1: "Success", 2: "Failed", 3: "Cancelled", 4: "Success"},
                 {2: [1], 3: [2], 4: [1]})
    before = len(await front.events())

    r = await _rerun(front, batch_id)
    assert r.status_code == 200, r.text
    assert r.json() == {"batch_id": batch_id, "update_id": 2, "start_job_id": 5, "n_jobs": 2,
                        "job_ids": {"2": 5, "3": 6}, "skipped_job_ids": []}

    new = (await front.events())[before:]
    assert [type(e) for e in new] == [BatchUpdateCreated, JobCreated, JobCreated, BatchUpdateCommitted]
    created, copy_2, copy_3, committed = new
    assert (created.update_id, created.n_jobs, created.start_job_id) == (2, 2, 5)
    assert created.token.startswith("rerun-failed-")
    assert (copy_2.job_id, copy_2.parent_ids, copy_2.update_id) == (5, (1,), 2)  # 1 succeeded: done already
    assert (copy_3.job_id, copy_3.parent_ids) == (6, (5,))                    # waits for 2's copy
    assert copy_2.attributes == {"name": "j2"} and copy_2.spec.command == ("echo", "2")
    assert committed.n_jobs == 2

    status = (await front.client.get(f"/api/v1alpha/batches/{batch_id}")).json()
    assert status["n_jobs"] == 6 and status["complete"] is False  # Hail: an update reopens the batch

    again = await _rerun(front, batch_id)
    assert again.status_code == 400
    assert "no jobs to re-run" in again.json()["message"]

    # the copies fail again: the next re-run copies the copies, and only them
    await _ended(front, batch_id, {5: "Error", 6: "Cancelled"}, {5: [1], 6: [5]})
    third = await _rerun(front, batch_id, {"token": "mine"})
    assert third.json()["job_ids"] == {"5": 7, "6": 8} and third.json()["update_id"] == 3
    n_events = len(await front.events())
    repeated = await _rerun(front, batch_id, {"token": "mine"})  # a retry gets the first answer
    assert repeated.status_code == 200 and repeated.json()["job_ids"] == third.json()["job_ids"]
    assert len(await front.events()) == n_events


async def test_a_batch_with_nothing_to_rerun_is_a_400(front):
    batch_id = await _create(front, [job(1), job(2)])
    await _ended(front, batch_id, {1: "Success", 2: "Running"}, {})
    r = await _rerun(front, batch_id)
    assert r.status_code == 400 and f"batch {batch_id} has no jobs to re-run" in r.json()["message"]


async def test_a_cancelled_batch_cannot_be_rerun(front):
    batch_id = await _create(front, [job(1)])
    await _ended(front, batch_id, {1: "Cancelled"}, {})
    assert (await front.client.patch(f"/api/v1alpha/batches/{batch_id}/cancel")).status_code == 200
    r = await _rerun(front, batch_id)
    assert r.status_code == 400 and "is cancelled" in r.json()["message"]


async def test_jobs_of_a_cancelled_group_are_skipped(front):
    batch_id = await _create(front, [job(1, absolute_job_group_id=None, in_update_job_group_id=1), job(2)],
                             n_job_groups=1, groups=[{"job_group_id": 1}])
    await _ended(front, batch_id, {1: "Cancelled", 2: "Failed"}, {}, groups={1: 1})
    assert (await front.client.patch(f"/api/v1alpha/batches/{batch_id}/job-groups/1/cancel")).status_code == 200
    r = await _rerun(front, batch_id)
    assert r.status_code == 200, r.text
    assert r.json()["job_ids"] == {"2": 3} and r.json()["skipped_job_ids"] == [1]


async def test_another_users_batch_and_bad_bodies(front):
    batch_id = await _create(front, [job(1)])
    await _ended(front, batch_id, {1: "Failed"}, {})
    assert (await _rerun(front, batch_id, headers=front.bob)).status_code == 404
    assert (await _rerun(front, 999_999)).status_code == 404
    for body, words in [({"token": 5}, "token: must be a string"), ({"tokn": "x"}, "tokn: unknown field"),
                        ({"token": "a\x00"}, "NUL"), ({"token": ""}, "must not be empty"), ([1], "JSON object")]:
        r = await _rerun(front, batch_id, body)
        assert r.status_code == 400 and words in r.json()["message"], (body, r.text)
    bad = await front.client.post(f"/api/v1alpha/batches/{batch_id}/rerun-failed", content=b"{nope",
                                  headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["message"]
    used = await front.client.post(f"/api/v1alpha/batches/{batch_id}/updates/create",
                                   json={"token": "plain", "n_jobs": 1, "n_job_groups": 0})
    assert used.status_code == 200
    r = await _rerun(front, batch_id, {"token": "plain"})
    assert r.status_code == 400 and "not a re-run" in r.json()["message"]


async def test_a_project_over_its_billing_limit_cannot_rerun(front):
    batch_id = await _create(front, [job(1)])
    await _ended(front, batch_id, {1: "Failed"}, {})
    await front.sql("UPDATE front_billing_projects SET limit_usd = 0 WHERE name = 'alice-project'")
    r = await _rerun(front, batch_id)
    assert r.status_code == 403 and "limit" in r.json()["message"]
    assert await front.sql("SELECT count(*) FROM front_reruns") == [(0,)]
