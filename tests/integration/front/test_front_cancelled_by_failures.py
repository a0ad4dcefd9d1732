"""A batch or group that the log cancelled on its own (cancel_after_n_failures) is cancelled for the
front too, as in Hail, where the driver's cancel of a fast-failing group is the same row a user's cancel
writes: the batch refuses new updates and commits, and a group refuses children under it.

The resolver's derived events are appended here as the resolver appends them (events/core/react.py),
and the read model folds them, as it does live."""

from __future__ import annotations

from front_harness import Front
from front_specs import batch, job

from events.catalog import BatchCancelled, JobGroupCancelled
from events.envelope import derived_event_id
from events.publisher import Publisher
from projections.readmodel.service import run_readmodel
from projections.runner import log_end

REASON = "cancel_after_n_failures"  # events/core/react.py's CANCEL_AFTER_N_FAILURES


async def fold_into_read_model(front: Front) -> None:
    await run_readmodel(front.log, front.topics, front.deps.pool.conninfo, until=await log_end(front.log, front.topics))


async def cancelled_by_the_log(front: Front, batch_id: int, job_group_id: int) -> None:
    if job_group_id == 0:
        event = BatchCancelled(event_id=derived_event_id("BatchCancelled", batch_id), occurred_at=1,
                               producer="resolver/test", batch_id=batch_id, reason=REASON)
    else:
        event = JobGroupCancelled(event_id=derived_event_id("JobGroupCancelled", batch_id, job_group_id),
                                  occurred_at=1, producer="resolver/test", batch_id=batch_id,
                                  job_group_id=job_group_id, reason=REASON)
    await Publisher(front.log, front.topics).publish([event])
    await fold_into_read_model(front)


async def test_a_batch_the_log_cancelled_refuses_updates_and_commits(front: Front) -> None:
    created = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, cancel_after_n_failures=1), "bunch": [job(1)], "job_groups": []})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    url = f"/api/v1alpha/batches/{batch_id}/updates"
    opened = await front.client.post(f"{url}/create", json={"token": "u2", "n_jobs": 1})
    assert opened.status_code == 200, opened.text
    await cancelled_by_the_log(front, batch_id, 0)

    refused = await front.client.post(f"{url}/create", json={"token": "u3", "n_jobs": 1})
    assert refused.status_code == 400 and "is cancelled" in refused.json()["message"], refused.text
    jobs = await front.client.post(f"{url}/2/jobs/create", json=[job(1)])
    assert jobs.status_code == 400 and "is cancelled" in jobs.json()["message"], jobs.text
    commit = await front.client.patch(f"{url}/2/commit")
    assert commit.status_code == 400 and "is cancelled" in commit.json()["message"], commit.text


async def test_a_group_the_log_cancelled_takes_no_child_group(front: Front) -> None:
    created = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(1, n_job_groups=2),
        "job_groups": [{"job_group_id": 1, "cancel_after_n_failures": 1}, {"job_group_id": 2}],
        "bunch": [job(1, in_update_job_group_id=1, absolute_job_group_id=None)]})
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    await cancelled_by_the_log(front, batch_id, 1)

    update = {"token": "u2", "n_jobs": 0, "n_job_groups": 1}
    refused = await front.client.post(f"/api/v1alpha/batches/{batch_id}/update-fast", json={
        "update": update, "job_groups": [{"job_group_id": 1, "absolute_parent_id": 1}], "bunch": []})
    assert refused.status_code == 400 and "parent job group 1 is cancelled" in refused.json()["message"], refused.text
    # the group beside it was not cancelled: a child there is taken
    taken = await front.client.post(f"/api/v1alpha/batches/{batch_id}/update-fast", json={
        "update": {**update, "token": "u3"}, "job_groups": [{"job_group_id": 1, "absolute_parent_id": 2}],
        "bunch": []})
    assert taken.status_code == 200, taken.text
