"""`squall replay --verify` checks the front's own tables against the log (projections/front_check.py):
batches, updates, job groups and jobs submitted through the API over a real broker, folded by the
read model, then one fact at a time taken out of the front's tables."""

from __future__ import annotations

import asyncio

import pytest
from front_harness import make_front
from front_specs import batch, dag, job
from typer.testing import CliRunner

import services.cli.replay  # noqa: F401  (registers the commands)
from projections.readmodel.service import run_readmodel
from projections.runner import log_end
from services.cli import app

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

FRONT_LINE = "the front's tables hold every batch, update, job group and job of the log"


async def test_replay_verify_finds_a_fact_of_the_log_the_front_lost(fresh_db, kafka_log, kafka_bootstrap, topics,
                                                                     gcs_store, bucket_name):
    async for front in make_front(fresh_db, kafka_log, topics, gcs_store, bucket_name):
        first = await front.client.post("/api/v1alpha/batches/create-fast", json={
            "batch": batch(3, n_job_groups=2),
            "job_groups": [{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1}],
            "bunch": [job(1, in_update_job_group_id=2, absolute_job_group_id=None), job(2, parents=[1]),
                      job(3, parents=[2])]})
        assert first.status_code == 200, first.text
        batch_id = first.json()["id"]
        url = f"/api/v1alpha/batches/{batch_id}/updates"
        assert (await front.client.post(f"{url}/create", json={"token": "u2", "n_jobs": 2})).status_code == 200
        for bunch in ([job(1, absolute_parents=[3])], [job(2, parents=[1])]):  # two bunches, two ranges
            assert (await front.client.post(f"{url}/2/jobs/create", json=bunch)).status_code == 200
        assert (await front.client.patch(f"{url}/2/commit")).status_code == 200
        deleted = (await front.client.post("/api/v1alpha/batches/create-fast",
                                           json={"batch": batch(1, token="gone"), "bunch": dag(1),
                                                 "job_groups": []})).json()["id"]
        assert (await front.client.delete(f"/api/v1alpha/batches/{deleted}")).status_code == 200

        await run_readmodel(kafka_log, topics, fresh_db, until=await log_end(kafka_log, topics))
        args = ["replay", "--verify", "--bootstrap", kafka_bootstrap, "--database-url", fresh_db,
                "--topic-prefix", topics.prefix]

        def verify(args: list[str] = args):
            return asyncio.to_thread(CliRunner().invoke, app, args)

        clean = await verify()
        assert clean.exit_code == 0, clean.output
        assert "no differences" in clean.output and FRONT_LINE in clean.output

        # what a front would lose if its rows were written and lost, or never written after its append
        await front.sql("DELETE FROM front_job_ranges WHERE batch_id = %s AND update_id = 2 AND first_job_id = 2",
                        (batch_id,))
        await front.sql("UPDATE front_updates SET committed = false WHERE batch_id = %s AND update_id = 2",
                        (batch_id,))
        await front.sql("UPDATE front_job_groups SET parent_job_group_id = 0 WHERE batch_id = %s "
                        "AND job_group_id = 2", (batch_id,))
        await front.sql("UPDATE front_batches SET deleted = false WHERE batch_id = %s", (deleted,))
        broken = await verify()
        assert broken.exit_code == 1, broken.output
        lines = [line for line in broken.output.splitlines() if line.startswith("front_")]
        assert lines == [
            f"front_batches ({deleted},): deleted live=False replay=True",
            f"front_updates ({batch_id}, 2): committed live=False replay=True",
            f"front_job_groups ({batch_id}, 2): parent_job_group_id live=0 replay=1",
            f"front_job_ranges ({batch_id}, 5): in the log, not in the front's table",
        ], broken.output
        assert "4 difference(s)" in broken.output and FRONT_LINE not in broken.output

        await front.sql("DELETE FROM front_job_groups WHERE batch_id = %s AND job_group_id = 1", (batch_id,))
        lost_group = await verify()
        assert f"front_job_groups ({batch_id}, 1): in the log, not in the front's table" in lost_group.output
