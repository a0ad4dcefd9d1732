"""A log written before verdicts, projected into a real PostgreSQL by the live projection (one record
per transaction, rows loaded only as needed) and rebuilt in bulk mode holding few jobs: both give
that release's rows, and agree row for row.

The log is release e5acf8e's (tests/fixtures/legacy) plus one batch with the race its resolver
refused: an SJ after the cancellation, before the JobCancelled. Live, that JobCancelled comes in a
later transaction than the SJ without the attempt's row, so the sink ends the attempt
(`ReadModel.ended_attempts`); in bulk mode the row may have been written and dropped already.
"""

from __future__ import annotations

import base64
import gzip
import json
import sys
from pathlib import Path

import psycopg
import pytest

from events.log import EventLog, Message
from events.publisher import Publisher
from events.topics import Topics
from projections.db import connect
from projections.readmodel.service import run_readmodel
from projections.replay import compare, rebuild
from projections.runner import RunnerSettings, log_end

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "core"))  # the lifecycle builder
from lifecycle_world import Builder, World  # noqa: E402

pytestmark = pytest.mark.postgres

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "legacy" / "e5acf8e.json.gz"
RACED_BATCH = 100


async def publish_legacy_log(log: EventLog, topics: Topics) -> dict:
    legacy = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    topic_of = {"batch-events": topics.batch, "instance-events": topics.instance}
    records = sorted((r for r in legacy["records"] if r[0] in topic_of), key=lambda r: (r[0], r[1], r[2]))
    # as written: raw v1 bytes, same keys (so each batch's records stay in order on one partition)
    await log.append([Message(topic_of[t], base64.b64decode(v), key=base64.b64decode(k) if k is not None else None)
                      for t, _, _, k, v in records])
    b, w = Builder(batch_id=RACED_BATCH), World()
    w.append(b.batch(), *b.dag({1: ()}))
    w.settle()
    w.append(b.cancel())
    w.settle()
    cancelled_at = next(i for i, e in enumerate(w.log) if e.SCHEMA_NAME == "JobCancelled")
    raced = [*w.log[:cancelled_at], b.sj(1, "a1", awaits_verdict=False), *w.log[cancelled_at:]]
    await Publisher(log, topics).publish(raced)
    return legacy


async def test_a_log_from_before_verdicts_projects_live_and_in_bulk_to_that_releases_rows(
        memory_log: EventLog, topics: Topics, readmodel_db: str) -> None:
    legacy = await publish_legacy_log(memory_log, topics)
    until = await log_end(memory_log, topics)
    await run_readmodel(memory_log, topics, readmodel_db, settings=RunnerSettings(max_batch=1, workers=1),
                        until=until)
    with psycopg.connect(readmodel_db) as conn:
        attempts = {(b, j, a): (end, reason) for b, j, a, end, reason in conn.execute(
            "SELECT batch_id, job_id, attempt_id, end_time, reason FROM attempts")}
        jobs = {(b, j): (state, current) for b, j, state, current in conn.execute(
            "SELECT batch_id, job_id, state, current_attempt_id FROM jobs")}
    for (batch_id, job_id, attempt_id), row in legacy["read_model"]["attempts"]:
        assert attempts[(batch_id, job_id, attempt_id)] == (row["end_time"], row["reason"]), (batch_id, job_id)
    for (batch_id, job_id), row in legacy["read_model"]["jobs"]:
        assert jobs[(batch_id, job_id)] == (row["state"], row["current_attempt_id"]), (batch_id, job_id)
    # the raced SJ: taken where it landed, then ended by the JobCancelled in a later transaction
    assert jobs[(RACED_BATCH, 1)] == ("Cancelled", None)
    end_time, reason = attempts[(RACED_BATCH, 1, "a1")]
    assert end_time is not None and reason == "cancelled"

    result = await rebuild(memory_log, topics, readmodel_db, "legacy_bulk", until=until,
                           settings=RunnerSettings(max_batch=7, workers=2), max_held_jobs=2)
    assert result.mode == "bulk"
    with connect(readmodel_db) as live, connect(readmodel_db, schema="legacy_bulk") as rebuilt:
        differences, compared = compare(live, rebuilt)
    assert differences == [] and compared > 50
