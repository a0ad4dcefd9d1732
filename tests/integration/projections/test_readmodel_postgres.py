"""The read-model projection into a real PostgreSQL: the tables equal the pure fold, whatever the
chunking; replay into a fresh schema equals the live schema row for row; poison is quarantined."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from events import catalog as ev
from events.codec import Codec
from events.log import EventLog, Message, Position
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel import fold as fold_module
from projections.readmodel import ops
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.readmodel.service import run_readmodel
from projections.readmodel.tables import STATEFUL
from projections.replay import replay_and_verify
from projections.runner import RunnerSettings, log_end
from tests.fakes.streams import StreamShape, build_stream

pytestmark = pytest.mark.postgres

SHAPE = StreamShape(n_batches=6, jobs_per_batch=40, n_instances=3, p_retry=0.1, p_fail=0.1, p_cancel=0.05)


def table_rows(url: str, schema: str = "public") -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    out = {}
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        for table in STATEFUL:
            cur = conn.execute(f"SELECT * FROM {table.name}")
            names = [d.name for d in cur.description]
            out[table.name] = {tuple(r[names.index(k)] for k in table.key): dict(zip(names, r, strict=True))
                               for r in cur.fetchall()}
    return out


async def publish_stream(log: EventLog, topics: Topics, seed: int = 11) -> list:
    events = build_stream(SHAPE, seed=seed).events
    await Publisher(log, topics).publish(events)
    return events


async def test_tables_equal_the_pure_fold_for_any_chunking(memory_log: EventLog, topics: Topics,
                                                           readmodel_db: str) -> None:
    await publish_stream(memory_log, topics)
    await run_readmodel(memory_log, topics, readmodel_db, settings=RunnerSettings(max_batch=37, workers=3),
                        until=await log_end(memory_log, topics))
    model = ReadModel()  # the same records, folded in log order without a database
    codec = Codec()
    for topic in topics.fold_topics:
        for partition in range(await memory_log.partitions(topic)):
            for record in await memory_log.read(topic, partition, 0, timeout_ms=10):
                model.apply_all(convert(codec.decode(record.value), Position(topic, partition, record.offset)))
    stored = table_rows(readmodel_db)
    for table in STATEFUL:
        assert stored[table.name].keys() == model.rows[table.name].keys(), table.name
        for key, row in model.rows[table.name].items():
            assert {c: stored[table.name][key][c] for c in row} == row, (table.name, key)
    with psycopg.connect(readmodel_db) as conn:
        n_batch_events = sum(e for (t, _), e in (await log_end(memory_log, topics)).items() if t == topics.batch)
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (n_batch_events,)


async def test_replay_verify_on_a_live_built_database_finds_no_difference(kafka_log: EventLog, topics: Topics,
                                                                           readmodel_db: str) -> None:
    await publish_stream(kafka_log, topics)
    live = RunnerSettings(max_batch=50, workers=2)
    await run_readmodel(kafka_log, topics, readmodel_db, settings=live, until=await log_end(kafka_log, topics))
    result = await replay_and_verify(kafka_log, topics, readmodel_db)
    assert result.events == sum((await log_end(kafka_log, topics)).values())
    assert result.rows_compared > 1000
    assert result.differences == []
    # a difference, once introduced, is reported with the column and both values
    with psycopg.connect(readmodel_db) as conn:
        conn.execute("UPDATE batches SET n_failed = n_failed + 1 WHERE batch_id = 1")
    result = await replay_and_verify(kafka_log, topics, readmodel_db)
    assert [(d.table, d.key, d.columns[0][0]) for d in result.differences] == [("batches", (1,), "n_failed")]


async def test_poison_is_quarantined_and_the_projection_keeps_going(memory_log: EventLog, topics: Topics,
                                                                    readmodel_db: str) -> None:
    events = await publish_stream(memory_log, topics)
    codec_bytes = Publisher(memory_log, topics).to_message(events[0])  # BatchCreated of batch 1...
    await memory_log.append([
        Message(topics.batch, b"not avro at all", key=b"1"),
        Message(topics.batch, codec_bytes.value[:12], key=b"1"),  # truncated body
    ])
    orphan = ev.JobBecameReady(event_id="x", occurred_at=1, producer="t", batch_id=999_999, job_id=1, reason="r")
    await Publisher(memory_log, topics).publish([orphan])  # a job the log never created
    await run_readmodel(memory_log, topics, readmodel_db, until=await log_end(memory_log, topics))
    with psycopg.connect(readmodel_db) as conn:
        reasons = [r for (r,) in conn.execute("SELECT reason FROM quarantine ORDER BY reason")]
        assert len(reasons) == 3
        assert sum(r.startswith("cannot decode") for r in reasons) == 2
        assert any("job 999999/1 has no JobCreated" in r for r in reasons)
        assert conn.execute("SELECT count(*) FROM batches").fetchone() == (SHAPE.n_batches,)
    published = [r for p in range(await memory_log.partitions(topics.quarantine))
                 for r in await memory_log.read(topics.quarantine, p, 0, timeout_ms=10)]
    assert len(published) == 3


async def test_verify_while_the_live_projector_keeps_applying(memory_log: EventLog, topics: Topics,
                                                             readmodel_db: str) -> None:
    """The comparison uses one snapshot of the live schema and replays to its offsets, so events
    that keep arriving (and keep being applied) during the verify cause no differences."""
    events = build_stream(SHAPE, seed=12).events
    publisher = Publisher(memory_log, topics)
    await publisher.publish(events[: len(events) // 2])
    stop = asyncio.Event()
    live = asyncio.create_task(run_readmodel(memory_log, topics, readmodel_db, stop=stop,
                                             settings=RunnerSettings(max_batch=200, idle_sleep_s=0.01)))

    async def keep_appending() -> None:
        rest = events[len(events) // 2:]
        for start in range(0, len(rest), 100):
            await publisher.publish(rest[start:start + 100])
            await asyncio.sleep(0.01)

    appender = asyncio.create_task(keep_appending())
    with psycopg.connect(readmodel_db) as conn:
        while conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0] == 0:
            await asyncio.sleep(0.05)
            conn.commit()
    result = await replay_and_verify(memory_log, topics, readmodel_db)
    await appender
    stop.set()
    await live
    assert result.differences == []
    assert result.events > 0


async def test_a_bug_in_the_fold_stops_the_projection_and_quarantines_nothing(memory_log: EventLog, topics: Topics,
                                                                              readmodel_db: str, monkeypatch) -> None:
    """Only an UnprojectableEvent is poison; a KeyError from the fold is a bug, which must be fixed,
    not hidden by quarantining every event that meets it."""
    await publish_stream(memory_log, topics)

    def broken(self, op):  # type: ignore[no-untyped-def]
        raise KeyError("time_ready")

    monkeypatch.setattr(ReadModel, "_mark_ready", broken)
    monkeypatch.setitem(fold_module._APPLY, ops.MarkJobReady, broken)
    with pytest.raises(KeyError, match="time_ready"):
        await run_readmodel(memory_log, topics, readmodel_db, until=await log_end(memory_log, topics))
    with psycopg.connect(readmodel_db) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
