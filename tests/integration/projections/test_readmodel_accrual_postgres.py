"""Cost accrues while attempts run (workers' billing updates), through the real sinks on Kafka and
PostgreSQL: the live projection with small transactions and several workers equals the pure fold,
and `squall replay --verify` (rebuild mode with a memory bound small enough to write, drop and load
back running attempts, and the live projection) finds no difference."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from events import catalog as ev
from events.codec import Codec
from events.log import EventLog, Position
from events.publisher import Publisher
from events.topics import Topics
from projections.cost import PriceTable
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.readmodel.service import run_readmodel
from projections.replay import replay_and_verify
from projections.runner import RunnerSettings, log_end
from tests.fakes.streams import StreamShape, build_stream

pytestmark = pytest.mark.postgres

SHAPE = StreamShape(n_batches=6, jobs_per_batch=25, n_instances=4, p_retry=0.15, p_fail=0.1, p_cancel=0.05,
                    report_every_ms=600)
PRICES = PriceTable(cpu_core_hour=1.5, service_fee_core_hour=0.02)  # not the defaults: the table reaches the sinks


def prefix_with_running_attempts(seed: int = 5) -> list[ev.Event]:
    """The stream up to a point where each batch has an attempt running that reports billed."""
    events = build_stream(SHAPE, seed=seed).events
    reports = [k for k, e in enumerate(events) if isinstance(e, ev.RunningAttemptsReported)]
    return events[: reports[int(len(reports) * 0.6)] + 1]


def rows_of(url: str, table: str, schema: str = "public") -> list[dict[str, Any]]:
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        cur = conn.execute(f"SELECT * FROM {table}")
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@pytest.mark.parametrize("bulk", [True, False], ids=["rebuild-mode", "live-projection"])
async def test_running_cost_replays_exactly(kafka_log: EventLog, topics: Topics, readmodel_db: str,
                                            bulk: bool) -> None:
    events = prefix_with_running_attempts()
    await Publisher(kafka_log, topics).publish(events)
    await run_readmodel(kafka_log, topics, readmodel_db, prices=PRICES,
                        settings=RunnerSettings(max_batch=17, workers=3), until=await log_end(kafka_log, topics))
    running = [a for a in rows_of(readmodel_db, "attempts") if a["start_time"] is not None and a["end_time"] is None]
    assert running and all(a["billed_ms"] == a["billed_until"] - a["start_time"] > 0 for a in running
                           if a["billed_until"] is not None)
    assert any(a["billed_ms"] > 0 for a in running)

    # the pure fold of the same log, with the same prices, is what the tables hold
    model, codec = ReadModel(PRICES), Codec()
    for topic in topics.fold_topics:
        for partition in range(await kafka_log.partitions(topic)):
            for record in await kafka_log.read(topic, partition, 0, max_records=100_000, timeout_ms=200):
                model.apply_all(convert(codec.decode(record.value), Position(topic, partition, record.offset)))
    for table in ("batches", "job_groups", "jobs", "attempts"):
        stored = {tuple(r[k] for k in _keys(table)): r for r in rows_of(readmodel_db, table)}
        assert stored.keys() == model.rows[table].keys(), table
        for key, row in model.rows[table].items():
            assert {c: stored[key][c] for c in row} == row, (table, key)

    verified = await replay_and_verify(kafka_log, topics, readmodel_db, prices=PRICES, bulk=bulk,
                                       settings=RunnerSettings(max_batch=40, workers=2))
    assert verified.differences == [] and verified.rows_compared > 500
    # a replay with other prices differs exactly in the costs: the price table is part of the read model's setup
    other = await replay_and_verify(kafka_log, topics, readmodel_db, bulk=bulk)
    assert other.differences and {c for d in other.differences for c, _, _ in d.columns} <= {"cost", "cost_breakdown"}


async def test_rebuild_mode_loads_back_running_attempts_it_wrote_and_dropped(memory_log: EventLog, topics: Topics,
                                                                             readmodel_db: str) -> None:
    """With room for only a few jobs, the rebuild writes running jobs and their attempts out and loads
    them back by key when a billing update names them: the result equals the live projection's."""
    from projections.replay import compare, rebuild

    await Publisher(memory_log, topics).publish(prefix_with_running_attempts(seed=8))
    await run_readmodel(memory_log, topics, readmodel_db, prices=PRICES, settings=RunnerSettings(max_batch=50),
                        until=await log_end(memory_log, topics))
    result = await rebuild(memory_log, topics, readmodel_db, "replay_small", prices=PRICES, max_held_jobs=6,
                           settings=RunnerSettings(max_batch=30))
    assert result.mode == "bulk"
    with psycopg.connect(readmodel_db) as live, \
            psycopg.connect(readmodel_db, options="-c search_path=replay_small") as rebuilt:
        differences, compared = compare(live, rebuilt)
    assert differences == [] and compared > 500


def _keys(table: str) -> tuple[str, ...]:
    from projections.readmodel.tables import PROJECTED

    return PROJECTED[table]
