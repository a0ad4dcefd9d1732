"""Rebuild mode (projections/readmodel/bulk.py) against a real PostgreSQL: it builds exactly the rows
the live projection builds, whether it holds every row in memory or has to write, drop and load
rows back; the schema ends with the same indexes; a record only the live projection can
quarantine makes the rebuild start over with the live projection."""

from __future__ import annotations

import psycopg
import pytest

from events import catalog as ev
from events.log import EventLog, Message
from events.publisher import Publisher
from events.topics import Topics
from projections.db import connect
from projections.readmodel.service import run_readmodel
from projections.replay import compare, rebuild, replay_and_verify
from projections.runner import RunnerSettings, log_end
from tests.integration.projections.test_readmodel_postgres import SHAPE, publish_stream

pytestmark = pytest.mark.postgres


async def build_live(log: EventLog, topics: Topics, url: str) -> None:
    await run_readmodel(log, topics, url, settings=RunnerSettings(max_batch=50, workers=2),
                        until=await log_end(log, topics))


def index_definitions(url: str, schema: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)).fetchall()
    return sorted(d.replace(f" {schema}.", " SCHEMA.") for (d,) in rows)


@pytest.mark.parametrize("max_held_jobs", [1_000_000, 7])
async def test_rebuild_mode_builds_the_rows_of_the_live_projection(memory_log: EventLog, topics: Topics,
                                                                  readmodel_db: str, max_held_jobs: int) -> None:
    """7 jobs held (of 240): batches and jobs are written and dropped all the time, then loaded back
    by later events (retries, completions, the commit of a batch's update) and written again. At the
    end the log delivers batch 1 again (duplicates), after the whole batch was written and dropped."""
    events = await publish_stream(memory_log, topics)
    await Publisher(memory_log, topics).publish([e for e in events if getattr(e, "batch_id", None) == 1])
    await build_live(memory_log, topics, readmodel_db)
    result = await rebuild(memory_log, topics, readmodel_db, "bulk_scratch", until=await log_end(memory_log, topics),
                           settings=RunnerSettings(max_batch=97, workers=2), max_held_jobs=max_held_jobs)
    assert result.mode == "bulk"
    with connect(readmodel_db) as live, connect(readmodel_db, schema="bulk_scratch") as rebuilt:
        differences, compared = compare(live, rebuilt)
    assert differences == []
    assert compared > SHAPE.n_batches * SHAPE.jobs_per_batch * 2
    assert index_definitions(readmodel_db, "bulk_scratch") == index_definitions(readmodel_db, "public")


async def test_a_poison_record_makes_the_rebuild_start_over_with_the_live_projection(
        memory_log: EventLog, topics: Topics, readmodel_db: str) -> None:
    events = await publish_stream(memory_log, topics)
    orphan = ev.JobBecameReady(event_id="x", occurred_at=1, producer="t", batch_id=999_999, job_id=1, reason="r")
    await Publisher(memory_log, topics).publish([orphan])  # a job the log never created
    await Publisher(memory_log, topics).publish(events[-50:])  # and more after it
    await build_live(memory_log, topics, readmodel_db)
    result = await replay_and_verify(memory_log, topics, readmodel_db)
    assert result.mode == "live"
    assert result.differences == []
    with connect(readmodel_db, schema=result.schema) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM quarantine")]
        assert len(reasons) == 1 and "job 999999/1 has no JobCreated" in reasons[0]
        assert conn.execute("SELECT relpersistence FROM pg_class WHERE oid = 'jobs'::regclass").fetchone() == ("p",)


async def test_records_that_do_not_decode_are_quarantined_in_rebuild_mode(
        memory_log: EventLog, topics: Topics, readmodel_db: str) -> None:
    await publish_stream(memory_log, topics)
    await memory_log.append([Message(topics.batch, b"not avro at all", key=b"1")])
    await build_live(memory_log, topics, readmodel_db)
    result = await replay_and_verify(memory_log, topics, readmodel_db)
    assert result.mode == "bulk"
    assert result.differences == []
    with connect(readmodel_db, schema=result.schema) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        assert conn.execute("SELECT relpersistence FROM pg_class WHERE oid = 'jobs'::regclass").fetchone() == ("u",)


@pytest.mark.kafka
async def test_rebuild_mode_in_two_processes_equals_the_live_projection(kafka_log: EventLog, topics: Topics,
                                                                       readmodel_db: str) -> None:
    await publish_stream(kafka_log, topics)
    await build_live(kafka_log, topics, readmodel_db)
    result = await replay_and_verify(kafka_log, topics, readmodel_db, processes=2)
    assert result.mode == "bulk"
    assert result.differences == []
    assert result.events == sum((await log_end(kafka_log, topics)).values())
    assert index_definitions(readmodel_db, result.schema) == index_definitions(readmodel_db, "public")
