"""A job no worker of the local stack's pools can hold: 400 at submit, and `why` says so for one that
got in anyway. The pools are the ones `squall up` writes for the autoscaler (2-core workers)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from front_harness import Front, make_front
from front_specs import batch, job

from deploy.stack import StackState, write_pools
from events.log import EventLog
from events.objectstore import InMemoryObjectStore
from events.pools_file import load_pools
from events.topics import Topics
from services.front.specs import SpecRules

pytestmark = pytest.mark.postgres


@pytest.fixture
async def local_front(fresh_db: str, memory_log: EventLog, topics: Topics, tmp_path: Path) -> AsyncIterator[Front]:
    state = StackState(home=str(tmp_path), api_url="", token="", billing_project="", bootstrap="", database_url="",
                       topic_prefix="", port=0, embedded_kafka=False, embedded_postgres=False, workers=1,
                       worker_cores=2)
    rules = SpecRules(supported_regions=("local",), pools=load_pools(write_pools(state), region="local"))
    async for f in make_front(fresh_db, memory_log, topics, InMemoryObjectStore(), "squall-system", rules):
        yield f


async def test_a_job_larger_than_every_pool_is_refused_naming_the_largest_pool(local_front: Front) -> None:
    front = local_front
    body = {"batch": batch(2, token="big"), "job_groups": [],
            "bunch": [job(1, resources={"cpu": "1"}), job(2, resources={"cpu": "4"})]}
    refused = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert refused.status_code == 400, refused.text
    message = refused.json()["message"]
    assert "bunch[1].resources" in message and "needs 4 cores" in message
    assert "pool standard, where it would run, has 2 cores" in message and "The largest pool is highmem" in message
    assert await front.events() == [], "nothing of a refused request reaches the log"

    body["bunch"] = [job(1, resources={"cpu": "1"}), job(2, resources={"cpu": "2"})]
    assert (await front.client.post("/api/v1alpha/batches/create-fast", json=body)).status_code == 200


async def test_why_says_no_pool_can_ever_fit_a_job_that_got_in_anyway(local_front: Front) -> None:
    """E.g. submitted before the pools were made smaller: the scheduler's "the autoscaler adds
    instances" would be a promise nobody keeps."""
    front = local_front
    body = {"batch": batch(1, token="old"), "bunch": [job(1)], "job_groups": []}
    batch_id = (await front.client.post("/api/v1alpha/batches/create-fast", json=body)).json()["id"]
    await front.sql(
        "INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, \"user\", billing_project, state, committed, "
        "always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, memory_bytes, storage_gib, "
        "preemptible, worker_type, time_created) VALUES (%s, 1, 0, 1, 'alice', 'alice-project', 'Ready', true, "
        "false, 20, %s, '{}', %s, 8000, %s, 0, true, 'standard', 1000)",
        (batch_id, [], json.dumps({"resources": {"cpu": "8"}}), 8 * 3840 * 1024**2))
    await front.sql("INSERT INTO scheduling_explanations (batch_id, job_id, reason_code, message, updated_at) "
                    "VALUES (%s, 1, 'no_capacity', 'the autoscaler adds instances for ready jobs', 1000)",
                    (batch_id,))
    why = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/why")).json()
    assert (why["reason_code"], why["source"]) == ("no_pool_fits", "state")
    assert why["message"].startswith("no pool can ever run this job: it needs 8 cores")
    assert "autoscaler" not in why["message"]
