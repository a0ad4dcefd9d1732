"""Data locality at submit (issue #18 item 4), on the session's fake-gcs-server: a job whose gs://
inputs are in a bucket outside all of its regions is refused (or warned about), a job whose regions
no pool serves is refused, and a store that cannot say where a bucket is gives a 503, never a 500.

fake-gcs-server puts every bucket in US-CENTRAL1 (it ignores a location asked for at creation, which
the first test pins), so the front here has its pools in europe-west1: the region a job may run in
and the region its data is in then differ, as for a European deployment reading a US bucket.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from front_harness import Front, make_front
from front_specs import batch, job

from events.catalog import JobCreated
from events.core.autoscale import default_pools
from events.log import EventLog
from events.objectstore import ObjectStore
from events.objectstore.gcs import GcsObjectStore
from events.topics import Topics
from services.front import buckets
from services.front.locality import WARNING_ATTRIBUTE, BucketLocations
from services.front.specs import SpecRules

pytestmark = pytest.mark.postgres


@pytest.fixture
async def eu_front(fresh_db: str, memory_log: EventLog, topics: Topics, gcs_store: ObjectStore,
                   bucket_name: str) -> AsyncIterator[Front]:
    rules = SpecRules(supported_regions=("europe-west1", "us-central1"), pools=default_pools("europe-west1"))
    async for f in make_front(fresh_db, memory_log, topics, gcs_store, bucket_name, rules):
        f.deps.submissions.files.locations = BucketLocations(gcs_store)
        yield f


async def _us_bucket(front: Front) -> str:
    name = f"us-data-{uuid.uuid4().hex[:12]}"
    await front.store.create_bucket(name)
    async with front.pool.connection() as conn:
        await buckets.grant(conn, name, billing_project="alice-project")
    return name


def _body(bucket: str, token: str, **extra: Any) -> dict[str, Any]:
    spec = job(1, input_files=[{"from": f"gs://{bucket}/in.txt", "to": "/io/in.txt"}], **extra)
    return {"batch": batch(1, token=token), "bunch": [spec], "job_groups": []}


async def test_the_store_reports_the_buckets_location(eu_front: Front) -> None:
    bucket = await _us_bucket(eu_front)
    assert await eu_front.store.bucket_location(bucket) == "US-CENTRAL1"


async def test_inputs_outside_every_region_of_the_job_are_refused_naming_job_bucket_location_regions(
        eu_front: Front) -> None:
    front = eu_front
    bucket = await _us_bucket(front)
    refused = await front.client.post("/api/v1alpha/batches/create-fast",
                                      json=_body(bucket, "far", regions=["europe-west1"]))
    assert refused.status_code == 400, refused.text
    message = refused.json()["message"]
    assert message.startswith("bunch[0].regions"), message
    assert "job 1:" in message and f"gs://{bucket} is in US-CENTRAL1" in message and "(europe-west1)" in message
    assert await front.events() == [], "nothing of a refused request reaches the log"
    # no regions: Hail's "any region", nothing to match
    anywhere = await front.client.post("/api/v1alpha/batches/create-fast", json=_body(bucket, "any"))
    assert anywhere.status_code == 200, anywhere.text
    assert front.deps.submissions.files.locations.lookups == 1  # type: ignore[union-attr]  # cached


async def test_in_warn_mode_the_job_is_accepted_and_its_record_carries_the_warning(eu_front: Front) -> None:
    front = eu_front
    front.deps.submissions.files.locality = "warn"
    bucket = await _us_bucket(front)
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json=_body(bucket, "warned", regions=["europe-west1"], attributes={"name": "x"}))
    assert r.status_code == 200, r.text
    created = [e for e in await front.events() if isinstance(e, JobCreated)]
    assert len(created) == 1
    assert created[0].attributes["name"] == "x"
    assert f"gs://{bucket} is in US-CENTRAL1" in created[0].attributes[WARNING_ATTRIBUTE]


async def test_a_job_whose_regions_no_pool_serves_is_refused_instead_of_waiting_for_ever(eu_front: Front) -> None:
    body = {"batch": batch(1, token="nowhere"), "bunch": [job(1, regions=["us-central1"])], "job_groups": []}
    r = await eu_front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert message.startswith("bunch[0].regions") and "pool standard" in message and "region europe-west1" in message


async def test_a_missing_bucket_is_a_400_and_an_unreachable_store_a_503(eu_front: Front) -> None:
    front = eu_front
    async with front.pool.connection() as conn:
        await buckets.grant(conn, "no-such-bucket-here", billing_project="alice-project")
    missing = await front.client.post("/api/v1alpha/batches/create-fast",
                                      json=_body("no-such-bucket-here", "missing", regions=["europe-west1"]))
    assert missing.status_code == 400 and "does not exist" in missing.json()["message"], missing.text
    bucket = await _us_bucket(front)
    down = GcsObjectStore(endpoint="http://127.0.0.1:9", retry_deadline_s=0, timeout_s=5)
    front.deps.submissions.files.locations = BucketLocations(down)
    try:
        r = await front.client.post("/api/v1alpha/batches/create-fast",
                                    json=_body(bucket, "down", regions=["europe-west1"]))
    finally:
        await down.close()
    assert r.status_code == 503, r.text
    assert bucket in r.json()["message"]
