"""Against the real Kafka broker: an accepted request's events are in the log when the 200 arrives."""

from __future__ import annotations

import pytest
from front_harness import make_front
from front_specs import batch, dag

from events.catalog import BatchCreated, BatchUpdateCommitted, BatchUpdateCreated, JobCreated
from events.codec import Codec
from events.log import partition_for

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_events_land_in_the_batch_partition_in_order(fresh_db, kafka_log, topics, gcs_store, bucket_name):
    async for front in make_front(fresh_db, kafka_log, topics, gcs_store, bucket_name):
        r = await front.client.post("/api/v1alpha/batches/create-fast",
                                    json={"batch": batch(3), "bunch": dag(3), "job_groups": []})
        assert r.status_code == 200, r.text
        batch_id = r.json()["id"]
        slow = (await front.client.post("/api/v1alpha/batches/create", json=batch(2, token="slow"))).json()
        url = f"/api/v1alpha/batches/{slow['id']}/updates/1"
        assert (await front.client.post(f"{url}/jobs/create", json=dag(2))).status_code == 200
        assert (await front.client.patch(f"{url}/commit")).status_code == 200

        codec = Codec()
        n_partitions = await kafka_log.partitions(topics.batch)
        for bid, n_jobs in ((batch_id, 3), (slow["id"], 2)):
            partition = partition_for(str(bid).encode(), n_partitions)
            # no waiting: the appends were acknowledged (acks=all) before the 200 went out
            records = await kafka_log.read(topics.batch, partition, 0, timeout_ms=2000)
            mine = [codec.decode(rec.value) for rec in records if rec.key == str(bid).encode()]
            assert [type(e) for e in mine] == [BatchCreated, BatchUpdateCreated, *[JobCreated] * n_jobs,
                                               BatchUpdateCommitted]
            assert [e.job_id for e in mine if isinstance(e, JobCreated)] == list(range(1, n_jobs + 1))
            assert len({e.event_id for e in mine}) == len(mine)
