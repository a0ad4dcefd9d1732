"""`squall replay --verify`, `squall replay --in-place`, `squall audit` and `squall quarantine list`
against a database built live from a real broker."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from typer.testing import CliRunner

import services.cli.replay  # noqa: F401  (registers the commands)
from events.kafka_log import KafkaEventLog
from events.log import Message
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.service import run_readmodel
from projections.runner import log_end
from services.cli import app
from tests.fakes.streams import StreamShape, build_stream

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def build_live(bootstrap: str, topics: Topics, url: str) -> None:
    log = await KafkaEventLog.connect(bootstrap, client_id="test-cli")
    try:
        await log.create_topics(topics.specs())
        events = build_stream(StreamShape(n_batches=3, jobs_per_batch=10, n_instances=2), seed=4).events
        await Publisher(log, topics).publish(events + autoscaler_events())
        await log.append([Message(topics.batch, b"garbage", key=b"1")])
        await run_readmodel(log, topics, url, until=await log_end(log, topics))
    finally:
        await log.close()


def autoscaler_events() -> list:
    """A standing worker requested in zone z-a for pool `spot`, and the decision that asked for it."""
    from events.catalog import (
        InstanceCreated,
        InstanceRequested,
        PoolInstanceChoice,
        PoolScalingDecided,
        PoolZoneWeight,
    )

    decision = PoolScalingDecided(
        event_id="psd-1", occurred_at=5_000, producer="autoscaler/test", pool="spot", requested=0,
        standing_requested=1, deleted=0, limited_by=None, paused_until=None, ready_mcpu=0, demand_mcpu=0,
        demand_truncated=False, future_mcpu=160_000, window_ms=150_000, free_mcpu=0, pending_mcpu=0, live=0,
        pending=0, inactive=0, min_instances=1, max_live_instances=4, max_instances=5, max_new_per_loop=10,
        worker_cores=16, standing_worker_cores=2, users=(),
        zones=(PoolZoneWeight(zone="z-a", successes=0, attempts=0, weight=0.5),),
        instances=(PoolInstanceChoice(instance_name="spot-standing-1", zone="z-a", standing=True),))
    requested = InstanceRequested(
        event_id="ir-s1", occurred_at=5_000, producer="autoscaler/test", instance_name="spot-standing-1", pool="spot",
        provider="local", machine_type="n1-standard-2", cores_mcpu=2000, memory_bytes=2**33, storage_gib=10,
        preemptible=True, region="local", standing=True, zone="z-a")
    created = InstanceCreated(event_id="ic-s1", occurred_at=5_100, producer="autoscaler/test",
                              instance_name="spot-standing-1", provider="local", provider_id="1", zone="z-a")
    return [decision, requested, created]


def test_replay_audit_and_quarantine_commands(kafka_bootstrap: str, topics: Topics, readmodel_db: str) -> None:
    asyncio.run(build_live(kafka_bootstrap, topics, readmodel_db))
    cli = CliRunner()
    env = ["--bootstrap", kafka_bootstrap, "--database-url", readmodel_db, "--topic-prefix", topics.prefix]

    verified = cli.invoke(app, ["replay", "--verify", *env])
    assert verified.exit_code == 0, verified.output
    assert "no differences" in verified.output and "rebuilt readmodel into schema replay_readmodel" in verified.output

    with psycopg.connect(readmodel_db) as conn:
        conn.execute("UPDATE jobs SET state = 'Running' WHERE batch_id = 2 AND job_id = 3")
    broken = cli.invoke(app, ["replay", "--verify", *env])
    assert broken.exit_code == 1
    assert "jobs (2, 3): state live='Running' replay=" in broken.output and "1 difference(s)" in broken.output

    rebuilt = cli.invoke(app, ["replay", "--in-place", "--processes", "2", *env])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert cli.invoke(app, ["replay", "--verify", *env]).exit_code == 0

    history = cli.invoke(app, ["audit", "2", *env])
    assert history.exit_code == 0, history.output
    assert "BatchCreated" in history.output and "JobCompleted" in history.output
    job = cli.invoke(app, ["audit", "2", "3", *env])
    lines = [line for line in job.output.splitlines() if "@" in line]
    assert lines and all(line.split()[3] == "3" for line in lines)  # only job 3's events
    first_offset = lines[0].split()[0].rsplit("@", 1)[1]
    as_of = cli.invoke(app, ["audit", "2", "3", "--at", first_offset, *env])
    assert as_of.exit_code == 0, as_of.output
    assert "job      3: Pending" in as_of.output  # as of its JobCreated

    pool = cli.invoke(app, ["audit", "--pool", "spot", *env])  # verified by replay above, like every table
    assert pool.exit_code == 0, pool.output
    assert "requested 1 standing worker(s) of 2 cores to keep min_instances 1, in zone(s) z-a" in pool.output
    assert "-> spot-standing-1 in z-a (standing)" in pool.output and "z-a: 0/0 ok, weight 0.50" in pool.output
    assert any(line.split()[:5] == ["spot-standing-1", "pending", "2", "z-a", "yes"] for line in pool.output.splitlines())
    assert cli.invoke(app, ["audit", "--pool", "nope", *env]).exit_code == 1
    assert cli.invoke(app, ["audit", *env]).exit_code == 2  # neither a batch nor a pool

    quarantined = cli.invoke(app, ["quarantine", "list", "--database-url", readmodel_db])
    assert quarantined.exit_code == 0
    assert "cannot decode" in quarantined.output and "1 quarantined in all" in quarantined.output
