"""SIGKILL the live projector at random points while 10,000 jobs' events flow (with duplicates, as a
processor re-deriving after a crash would append): after a restart the read models equal a clean
replay row for row, and equal the pure fold of the stream without its duplicates."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from events.kafka_log import KafkaEventLog
from events.log import Position
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.readmodel.tables import STATEFUL
from projections.replay import replay_and_verify
from tests.fakes.streams import StreamShape, build_stream

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

SHAPE = StreamShape(n_batches=50, jobs_per_batch=200, n_instances=8)  # 10,000 jobs
PARTS = 10  # projectors started and SIGKILLed, each while its part of the stream arrives


async def start_projector(bootstrap: str, topics: Topics, url: str, max_batch: int, log_file: Path) -> Any:
    with log_file.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "projections.readmodel", "--bootstrap", bootstrap, "--topic-prefix",
            topics.prefix, "--database-url", url, "--max-batch", str(max_batch), stdout=out, stderr=out)


def applied(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT coalesce(sum(next_offset), 0) FROM projection_offsets").fetchone()[0]


def projector_connections(url: str) -> int:
    """Connections to the test's database other than this one's (the projector's workers)."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid()").fetchone()[0]


async def log_size(log: KafkaEventLog, topics: Topics) -> int:
    return sum([sum((await log.end_offsets(t)).values()) for t in topics.fold_topics])


def stored_rows(url: str) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table in STATEFUL:
            cur = conn.execute(f"SELECT * FROM {table.name}")
            names = [d.name for d in cur.description]
            out[table.name] = {tuple(r[names.index(k)] for k in table.key): dict(zip(names, r, strict=True))
                               for r in cur.fetchall()}
    return out


async def test_sigkilled_projector_equals_a_clean_replay(kafka_log: KafkaEventLog, kafka_bootstrap: str,
                                                         topics: Topics, readmodel_db: str, tmp_path: Path) -> None:
    rng = random.Random(20261125)  # the kills' pattern
    duplicate_rng = random.Random(7)  # the feeder's, apart: the two run concurrently
    stream = build_stream(SHAPE, seed=5).events
    publisher = Publisher(kafka_log, topics)
    # the stream arrives in parts, one while each projector lives, so every projector has work to be
    # killed in the middle of (fed all at once, a fast projector caught up between kills and the
    # later kills met an idle one)
    part_size = -(-len(stream) // PARTS)

    async def feed(part: int) -> None:
        for start in range(part * part_size, min(len(stream), (part + 1) * part_size), 2_000):
            duplicates = [stream[duplicate_rng.randrange(0, start)] for _ in range(20)] if start else []
            await publisher.publish(stream[start:min(start + 2_000, (part + 1) * part_size)] + duplicates)
            await asyncio.sleep(0.1)

    progress = []
    log_file = tmp_path / "projector.log"
    for part in range(PARTS):
        feeder = asyncio.create_task(feed(part))
        before = applied(readmodel_db)
        projector = await start_projector(kafka_bootstrap, topics, readmodel_db, rng.choice([100, 700, 3_000]),
                                          log_file)
        if rng.random() < 0.2:
            await asyncio.sleep(rng.uniform(0.0, 1.0))  # during start-up
        else:  # once it has committed something (start-up takes seconds on a busy machine), mid-work
            deadline = time.monotonic() + 60
            while applied(readmodel_db) == before and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 1.5))
        projector.kill()  # SIGKILL: no chance to finish a transaction or clean up
        await projector.wait()
        await feeder
        progress.append(applied(readmodel_db))
    # the kills met projectors at work: most of them had applied something new
    assert sum(b > a for a, b in zip([0, *progress], progress, strict=False)) >= 4, (progress, log_file.read_text()[-3000:])

    projector = await start_projector(kafka_bootstrap, topics, readmodel_db, 5_000, log_file)
    total = await log_size(kafka_log, topics)
    deadline = time.monotonic() + 240
    # the killed projectors may have applied everything already: then wait until this one is up (its
    # connections are open once it handles SIGTERM), or the SIGTERM below would kill it mid-start
    while applied(readmodel_db) < total or projector_connections(readmodel_db) == 0:
        assert time.monotonic() < deadline, f"projector stuck at {applied(readmodel_db)}/{total}"
        assert projector.returncode is None, log_file.read_text()[-3000:]
        await asyncio.sleep(0.5)
    projector.terminate()
    assert await projector.wait() == 0

    result = await replay_and_verify(kafka_log, topics, readmodel_db)
    assert result.events == total
    assert result.differences == []

    expected = ReadModel()  # the stream without its duplicates, folded purely
    for offset, event in enumerate(stream):
        expected.apply_all(convert(event, Position("any", 0, offset)))
    stored = stored_rows(readmodel_db)
    assert len(stored["jobs"]) == 10_000
    for table in STATEFUL:
        assert stored[table.name].keys() == expected.rows[table.name].keys(), table.name
        for key, row in expected.rows[table.name].items():
            assert {c: stored[table.name][key][c] for c in row} == row, (table.name, key)
    with psycopg.connect(readmodel_db) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
