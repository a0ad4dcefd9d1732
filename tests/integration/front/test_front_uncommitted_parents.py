"""A parent in an earlier update that has not been committed (Hail's rule, checked against its code).

Hail inserts a bunch's jobs when it arrives, committed or not, and at commit counts a child's
parents by their rows: a parent whose row exists (its bunch arrived, its update not yet committed)
is pending, so the child waits for it; a parent with no row yet counts as neither pending nor
succeeded. squall does the first the same way (the resolver links a child to a parent it has seen,
committed or not) and refuses the second with a 400 (services/front/submission.py,
`_check_parents_in_log`): before, the child ran at once and its
parent, committed later, ran after it.
"""

from __future__ import annotations

import pytest
from front_specs import batch, job

from events.core.lifecycle import PENDING, READY
from tests.unit.core.lifecycle_world import World

pytestmark = pytest.mark.postgres


async def _reserved_batch(front, n_jobs: int = 1) -> int:
    r = await front.client.post("/api/v1alpha/batches/create", json=batch(n_jobs))
    assert r.status_code == 200 and r.json()["update_id"] == 1, r.text
    return int(r.json()["id"])


async def test_update_fast_refuses_a_parent_that_was_only_reserved(front):
    batch_id = await _reserved_batch(front)  # update 1 holds job 1, whose bunch never came
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/update-fast", json={
        "update": {"token": "u2", "n_jobs": 1}, "bunch": [job(1, absolute_parents=[1])]})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert message.startswith("bunch[0].absolute_parent_ids[0]") and "job 1" in message, message
    # nothing was reserved or appended for the refused update
    assert await front.sql("SELECT update_id FROM front_updates WHERE batch_id = %s", (batch_id,)) == [(1,)]


async def test_a_bunch_of_a_later_update_refuses_it_too(front):
    batch_id = await _reserved_batch(front)
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/updates/create", json={"token": "u2", "n_jobs": 1})
    assert r.status_code == 200 and r.json()["start_job_id"] == 2, r.text
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/updates/2/jobs/create",
                                json=[job(1, absolute_parents=[1])])
    assert r.status_code == 400 and "job 1" in r.json()["message"], r.text


async def test_a_parent_whose_bunch_arrived_holds_its_child_until_it_completes(front):
    batch_id = await _reserved_batch(front)
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/updates/1/jobs/create", json=[job(1)])
    assert r.status_code == 200, r.text  # job 1 is in the log; update 1 is not committed
    r = await front.client.post(f"/api/v1alpha/batches/{batch_id}/update-fast", json={
        "update": {"token": "u2", "n_jobs": 1}, "bunch": [job(1, absolute_parents=[1])]})
    assert r.status_code == 200, r.text

    world = World()
    world.append(*[e for e in await front.events() if e.batch_id == batch_id])
    world.settle()
    assert world.job_state(2) == PENDING  # the child waits for its uncommitted parent
    r = await front.client.patch(f"/api/v1alpha/batches/{batch_id}/updates/1/commit")
    assert r.status_code == 200, r.text
    world = World()
    world.append(*[e for e in await front.events() if e.batch_id == batch_id])
    world.settle()
    assert (world.job_state(1), world.job_state(2)) == (READY, PENDING)
