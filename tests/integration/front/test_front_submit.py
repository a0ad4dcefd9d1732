"""Write endpoints through the in-process app: memory log + real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from front_specs import batch, dag, job

from events.catalog import (
    BatchCancelRequested,
    BatchCreated,
    BatchDeleted,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    JobCreated,
    JobGroupCancelRequested,
    JobGroupCreated,
)

pytestmark = pytest.mark.postgres


async def test_create_fast_appends_the_whole_batch_in_order(front):
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(3, attributes={"name": "dag"}), "bunch": dag(3), "job_groups": []})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["start_job_id"] == 1 and answer["start_job_group_id"] == 1
    events = await front.events()
    assert [type(e) for e in events] == [BatchCreated, BatchUpdateCreated, JobCreated, JobCreated, JobCreated,
                                         BatchUpdateCommitted]
    created = events[0]
    assert (created.batch_id, created.user, created.billing_project, created.attributes) == (
        answer["id"], "alice", "alice-project", {"name": "dag"})
    jobs = [e for e in events if isinstance(e, JobCreated)]
    assert [j.job_id for j in jobs] == [1, 2, 3]
    assert [j.parent_ids for j in jobs] == [(), (1,), (2,)]
    assert jobs[0].spec.image == "busybox" and jobs[0].spec.command == ("echo", "1")
    assert jobs[0].spec.resources.cores_mcpu == 1000 and jobs[0].spec.resources.worker_type == "standard"
    assert jobs[0].n_max_attempts == 20 and jobs[0].job_group_id == 0


async def test_create_fast_retry_with_the_same_token_returns_the_same_batch_and_appends_nothing(front):
    body = {"batch": batch(2, token="same"), "bunch": dag(2), "job_groups": []}
    first = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    n_events = len(await front.events())
    again = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert len(await front.events()) == n_events


async def test_batch_tokens_are_per_user(front):
    body = {"batch": batch(0, token="shared"), "bunch": [], "job_groups": []}
    mine = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    body["batch"]["billing_project"] = "bob"
    theirs = await front.client.post("/api/v1alpha/batches/create-fast", json=body, headers=front.bob)
    assert theirs.status_code == 200 and theirs.json()["id"] != mine.json()["id"]


async def test_slow_path_bunches_in_parallel_any_order_then_commit(front):
    created = await front.client.post("/api/v1alpha/batches/create", json=batch(6))
    assert created.status_code == 200, created.text
    b = created.json()
    assert b["update_id"] == 1 and b["start_job_id"] == 1
    url = f"/api/v1alpha/batches/{b['id']}/updates/1"
    early = await front.client.patch(f"{url}/commit")
    assert early.status_code == 400 and early.json()["message"] == "wrong number of jobs: expected 6, actual 0"
    bunches = [dag(6)[0:2], dag(6)[2:4], dag(6)[4:6]]
    answers = await asyncio.gather(*[front.client.post(f"{url}/jobs/create", json=bunch)
                                     for bunch in reversed(bunches)])
    assert [a.status_code for a in answers] == [200, 200, 200]
    resend = await front.client.post(f"{url}/jobs/create", json=bunches[1])
    assert resend.status_code == 200
    commit = await front.client.patch(f"{url}/commit", headers={"Content-Type": "application/octet-stream"})
    assert commit.status_code == 200 and commit.json() == {"start_job_id": 1, "start_job_group_id": 1}
    assert (await front.client.patch(f"{url}/commit")).status_code == 200  # twice is harmless
    events = await front.events()
    assert sorted(e.job_id for e in events if isinstance(e, JobCreated)) == [1, 2, 3, 4, 5, 6]
    assert sum(isinstance(e, BatchUpdateCommitted) for e in events) == 1


async def test_create_without_jobs_has_no_update(front):
    r = await front.client.post("/api/v1alpha/batches/create", json=batch(0))
    assert r.status_code == 200
    assert r.json()["update_id"] is None and r.json()["start_job_id"] is None


async def test_overlapping_bunch_is_refused_and_partial_commit_names_counts(front):
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(4))).json()
    url = f"/api/v1alpha/batches/{b['id']}/updates/1"
    assert (await front.client.post(f"{url}/jobs/create", json=dag(4)[0:2])).status_code == 200
    overlap = await front.client.post(f"{url}/jobs/create", json=dag(4)[1:3])
    assert overlap.status_code == 400 and "overlap" in overlap.json()["message"]
    commit = await front.client.patch(f"{url}/commit")
    assert commit.json()["message"] == "wrong number of jobs: expected 4, actual 2"


async def test_second_update_reserves_the_next_block_and_maps_ids(front):
    first = (await front.client.post("/api/v1alpha/batches/create-fast",
                                     json={"batch": batch(2), "bunch": dag(2), "job_groups": []})).json()
    upd = await front.client.post(f"/api/v1alpha/batches/{first['id']}/update-fast", json={
        "update": {"token": "u2", "n_jobs": 2, "n_job_groups": 1},
        "job_groups": [{"job_group_id": 1, "attributes": {"name": "stage2"}}],
        "bunch": [job(1, absolute_parents=[2], in_update_job_group_id=1, absolute_job_group_id=None),
                  job(2, parents=[1])]})
    assert upd.status_code == 200, upd.text
    assert upd.json() == {"update_id": 2, "start_job_id": 3, "start_job_group_id": 1}
    events = await front.events()
    group = next(e for e in events if isinstance(e, JobGroupCreated))
    assert (group.job_group_id, group.parent_job_group_id, group.attributes) == (1, 0, {"name": "stage2"})
    jobs = {e.job_id: e for e in events if isinstance(e, JobCreated)}
    assert jobs[3].parent_ids == (2,) and jobs[3].job_group_id == 1
    assert jobs[4].parent_ids == (3,) and jobs[4].job_group_id == 0


async def test_update_token_dedupes_creates(front):
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(0))).json()
    url = f"/api/v1alpha/batches/{b['id']}/updates/create"
    one = await front.client.post(url, json={"token": "t", "n_jobs": 3})
    two = await front.client.post(url, json={"token": "t", "n_jobs": 3})
    assert one.json() == two.json() == {"update_id": 1, "start_job_group_id": 1, "start_job_id": 1}
    other = await front.client.post(url, json={"token": "t", "n_jobs": 4})
    assert other.status_code == 400 and "already used" in other.json()["message"]


async def test_cancelled_batch_refuses_updates_and_commits(front):
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(1))).json()
    await front.client.post(f"/api/v1alpha/batches/{b['id']}/updates/1/jobs/create", json=dag(1))
    assert (await front.client.patch(f"/api/v1alpha/batches/{b['id']}/cancel")).status_code == 200
    commit = await front.client.patch(f"/api/v1alpha/batches/{b['id']}/updates/1/commit")
    assert commit.status_code == 400 and "cancelled" in commit.json()["message"]
    upd = await front.client.post(f"/api/v1alpha/batches/{b['id']}/updates/create", json={"token": "x", "n_jobs": 1})
    assert upd.status_code == 400 and "cancelled" in upd.json()["message"]
    assert any(isinstance(e, BatchCancelRequested) and e.reason == "cancel" for e in await front.events())


async def test_job_group_cancel_and_groups_under_a_cancelled_group(front):
    b = (await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(0, n_job_groups=1), "bunch": [], "job_groups": [{"job_group_id": 1}]})).json()
    r = await front.client.patch(f"/api/v1alpha/batches/{b['id']}/job-groups/1/cancel")
    assert r.status_code == 200
    assert any(isinstance(e, JobGroupCancelRequested) and e.job_group_id == 1 for e in await front.events())
    child = await front.client.post(f"/api/v1alpha/batches/{b['id']}/update-fast", json={
        "update": {"token": "u", "n_jobs": 0, "n_job_groups": 1},
        "job_groups": [{"job_group_id": 1, "absolute_parent_id": 1}], "bunch": []})
    assert child.status_code == 400 and "cancelled" in child.json()["message"]
    missing = await front.client.patch(f"/api/v1alpha/batches/{b['id']}/job-groups/7/cancel")
    assert missing.status_code == 404


async def test_job_groups_nest_at_most_two_deep(front):
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(0, n_job_groups=3), "bunch": [],
        "job_groups": [{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1},
                       {"job_group_id": 3, "in_update_parent_id": 2}]})
    assert r.status_code == 400 and "job_groups[2]" in r.json()["message"] and "2 deep" in r.json()["message"]
    # the failed request reserved nothing: the same token works with a valid body
    ok = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(0, n_job_groups=2), "bunch": [],
        "job_groups": [{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1}]})
    assert ok.status_code == 200, ok.text


async def test_delete_cancels_then_hides(front):
    b = (await front.client.post("/api/v1alpha/batches/create-fast",
                                 json={"batch": batch(1), "bunch": dag(1), "job_groups": []})).json()
    assert (await front.client.delete(f"/api/v1alpha/batches/{b['id']}")).status_code == 200
    assert (await front.client.get(f"/api/v1alpha/batches/{b['id']}")).status_code == 404
    assert (await front.client.delete(f"/api/v1alpha/batches/{b['id']}")).status_code == 404
    kinds = [type(e) for e in await front.events()]
    assert kinds[-2:] == [BatchCancelRequested, BatchDeleted]


async def test_other_users_batches_are_not_found(front):
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(1))).json()
    for method, url in [("GET", f"/api/v1alpha/batches/{b['id']}"),
                        ("PATCH", f"/api/v1alpha/batches/{b['id']}/cancel"),
                        ("DELETE", f"/api/v1alpha/batches/{b['id']}"),
                        ("PATCH", f"/api/v1alpha/batches/{b['id']}/updates/1/commit"),
                        ("GET", f"/api/v1alpha/batches/{b['id']}/jobs")]:
        r = await front.client.request(method, url, headers=front.bob)
        assert r.status_code == 404, (method, url, r.text)
    posted = await front.client.post(f"/api/v1alpha/batches/{b['id']}/updates/1/jobs/create", json=dag(1),
                                     headers=front.bob)
    assert posted.status_code == 404


async def test_billing_project_membership_is_required(front):
    r = await front.client.post("/api/v1alpha/batches/create", json={**batch(0), "billing_project": "bob"})
    assert r.status_code == 403 and "billing project" in r.json()["message"]
