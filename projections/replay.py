"""Rebuild a projection from offset 0 into a fresh schema, and compare it with the live one.

    result = await replay_and_verify(log, topics, url)   # live schema "public", scratch "replay_readmodel"
    for diff in result.differences: print(diff)

The comparison is at one position of the log: a REPEATABLE READ snapshot of the live schema is
taken first, its stored offsets are where the replay stops, and the live rows are read from that
same snapshot, so a live projector that keeps running does not make differences appear.
Only projection tables are compared row for row (tables.PROJECTED); the scheduler's explanations
cache and schema_migrations are not projections. The front end's own tables are not either, but
they must hold every fact the log holds: front_check.py checks that, one way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg import sql

from events.kafka_log import KafkaEventLog
from events.kafka_security import KafkaSecurity
from events.log import EventLog
from events.topics import Topics
from projections.cost import PriceTable
from projections.db import READMODEL_MIGRATIONS, check_schema_name, connect, drop_schema, migrate
from projections.differences import Difference
from projections.front_check import check_front_tables, has_front_tables
from projections.readmodel.bulk import (
    BULK_FAILED,
    DEFAULT_MAX_HELD_JOBS,
    BulkRebuildFailed,
    finish_schema,
    prepare_schema,
)
from projections.readmodel.projection import NAME as READMODEL
from projections.readmodel.service import run_readmodel
from projections.readmodel.tables import PROJECTED
from projections.runner import RunnerSettings, TopicPartition, log_end

logger = logging.getLogger(__name__)

PROJECTIONS = (READMODEL,)  # every projection `squall replay` can rebuild
DEFAULT_SCRATCH = "replay_readmodel"


@dataclass
class ReplayResult:
    schema: str
    events: int
    seconds: float
    until: dict[TopicPartition, int]
    differences: list[Difference] = field(default_factory=list)
    rows_compared: int = 0
    mode: str = "live"  # "bulk": rebuild mode; "live": the live, transactional projection
    front_checked: bool = False  # the front's tables were checked against the log (front_check.py)


async def rebuild(log: EventLog, topics: Topics, database_url: str, schema: str = DEFAULT_SCRATCH,
                  until: dict[TopicPartition, int] | None = None, prices: PriceTable | None = None,
                  settings: RunnerSettings | None = None, in_place: bool = False,
                  processes: int = 1, bulk: bool = True, max_held_jobs: int = DEFAULT_MAX_HELD_JOBS) -> ReplayResult:
    """Drop `schema`, create the read-model tables there and fold the log from offset 0 up to `until`
    (default: the log's end offsets now). `in_place`: the schema's tables were emptied by `reset`;
    keep them and fold into them (with the live projection: a live projector may be running).
    `processes` > 1 (Kafka only): that many projector processes, each folding a share of the
    partitions (Python folds on one core per process). `bulk` (not in place): rebuild mode
    (projections/readmodel/bulk.py): rows written once, UNLOGGED tables, indexes built at the end;
    if the log has a record only the live projection can quarantine, the rebuild starts over with
    the live projection. `max_held_jobs`: rebuild mode's memory bound, jobs held per worker."""
    check_schema_name(schema)
    if schema == "public" and not in_place:
        raise ValueError("replay builds into a scratch schema, never 'public'; pass another --schema")
    if until is None:
        until = await log_end(log, topics)
    settings = settings or RunnerSettings()
    settings.publish_quarantine = False  # the live projector published them when it first met them
    started = time.perf_counter()
    if not in_place:
        drop_schema(database_url, schema)
        migrate(database_url, [READMODEL_MIGRATIONS], schema=schema)
        if bulk:
            try:
                applied = await _fold(log, topics, database_url, schema, until, prices, settings, processes, True,
                                      max_held_jobs)
                return ReplayResult(schema=schema, events=applied, seconds=time.perf_counter() - started,
                                    until=until, mode="bulk")
            except BulkRebuildFailed as exc:
                logger.warning("rebuild mode gave up (%s); rebuilding %s with the live projection", exc, schema)
                drop_schema(database_url, schema)
                migrate(database_url, [READMODEL_MIGRATIONS], schema=schema)
    applied = await _fold(log, topics, database_url, schema, until, prices, settings, processes, False)
    return ReplayResult(schema=schema, events=applied, seconds=time.perf_counter() - started, until=until)


async def _fold(log: EventLog, topics: Topics, database_url: str, schema: str, until: dict[TopicPartition, int],
                prices: PriceTable | None, settings: RunnerSettings, processes: int, bulk: bool,
                max_held_jobs: int = DEFAULT_MAX_HELD_JOBS) -> int:
    """Fold the log into `schema` up to `until`; the number of records applied or quarantined."""
    indexes = prepare_schema(database_url, schema) if bulk else []
    if processes > 1 and isinstance(log, KafkaEventLog):
        await _rebuild_in_processes(log.bootstrap, log.security, topics, database_url, schema, until, prices,
                                    settings, processes, bulk, max_held_jobs)
        applied = sum(until.values())  # every share ran to its `until` (a failure raised)
    else:
        applied = (await run_readmodel(log, topics, database_url, schema, prices, settings, until=until,
                                       bulk=bulk, max_held_jobs=max_held_jobs)).applied
    if bulk:
        finish_schema(database_url, schema, indexes)
    return applied


async def _rebuild_in_processes(bootstrap: str, security: KafkaSecurity, topics: Topics, database_url: str,
                                schema: str, until: dict[TopicPartition, int], prices: PriceTable | None,
                                settings: RunnerSettings, processes: int, bulk: bool, max_held_jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="squall-replay-") as tmp:
        args = ["--bootstrap", bootstrap, "--topic-prefix", topics.prefix, "--database-url", database_url,
                "--schema", schema, "--workers", str(settings.workers), "--max-batch", str(settings.max_batch),
                "--until-json", json.dumps({f"{t}:{p}": o for (t, p), o in until.items()}),
                "--no-publish-quarantine", *(["--bulk", "--max-held-jobs", str(max_held_jobs)] if bulk else [])]
        if prices is not None:
            price_file = Path(tmp) / "prices.yaml"
            price_file.write_text(yaml.safe_dump(asdict(prices)))
            args += ["--prices", str(price_file)]
        if security.security_protocol != "PLAINTEXT":  # the shards authenticate as this process does
            credentials = Path(tmp) / "kafka-credentials.json"
            security.save(credentials)
            args += ["--kafka-credentials", str(credentials)]
        children = [await asyncio.create_subprocess_exec(
            sys.executable, "-m", "projections.readmodel", *args, "--shard", f"{i}/{processes}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE) for i in range(processes)]
        try:
            outcomes = await asyncio.gather(*(child.communicate() for child in children))
        finally:
            for child in children:  # one failed, or we were cancelled: leave no projector behind
                if child.returncode is None:
                    child.kill()
                    await child.wait()
    for i, (child, (_, stderr)) in enumerate(zip(children, outcomes, strict=True)):
        if bulk and child.returncode == BULK_FAILED:
            raise BulkRebuildFailed(f"shard {i}/{processes}: {stderr.decode(errors='replace').strip()[-2000:]}")
    for i, (child, (_, stderr)) in enumerate(zip(children, outcomes, strict=True)):
        if child.returncode != 0:
            tail = stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"replay shard {i}/{processes} exited with {child.returncode}:\n{tail}")


async def replay_and_verify(log: EventLog, topics: Topics, database_url: str, live_schema: str = "public",
                            schema: str = DEFAULT_SCRATCH, prices: PriceTable | None = None,
                            settings: RunnerSettings | None = None, max_differences: int = 100,
                            processes: int = 1, bulk: bool = True) -> ReplayResult:
    """Rebuild into `schema` up to the live projection's position, then compare row for row
    (`bulk`: in rebuild mode, see `rebuild`)."""
    with connect(database_url, schema=live_schema) as live:
        live.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with live.transaction():
            rows = live.execute("SELECT topic, partition, next_offset FROM projection_offsets "
                                "WHERE projection = %s", (READMODEL,)).fetchall()
            until = {(t, p): o for t, p, o in rows}
            for topic in topics.fold_topics:  # partitions the live one never stored: nothing yet
                for partition in range(await log.partitions(topic)):
                    until.setdefault((topic, partition), 0)
            result = await rebuild(log, topics, database_url, schema, until, prices, settings, processes=processes,
                                   bulk=bulk)
            with connect(database_url, schema=schema) as scratch:
                result.differences, result.rows_compared = compare(live, scratch, max_differences)
    # the front's tables against the log, read now rather than in the snapshot (front_check.py says why)
    with connect(database_url, schema=live_schema) as live:
        result.front_checked = has_front_tables(live)
        if result.front_checked:
            result.differences += check_front_tables(live, schema, max_differences - len(result.differences))
    return result


def reset(database_url: str, schema: str = "public") -> None:
    """Empty the read-model tables of `schema` and its stored offsets, so the projector rebuilds them
    from offset 0. Safe while a projector runs: its next transaction finds the offsets moved
    (the offset rows are its fence), reloads them and starts over; two rebuilders serialise."""
    tables = [t for t in PROJECTED if t != "projection_offsets"]
    with connect(database_url, schema=schema) as conn, conn.transaction():
        conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
        conn.execute("DELETE FROM projection_offsets WHERE projection = %s", (READMODEL,))


def compare(live: psycopg.Connection, rebuilt: psycopg.Connection,
            max_differences: int = 100) -> tuple[list[Difference], int]:
    """Row-for-row differences between the projection tables of two connections' schemas."""
    differences: list[Difference] = []
    compared = 0
    for table, key in PROJECTED.items():
        # an offset row at 0 means nothing applied yet, the same as no row (a projector creates
        # its rows when it starts)
        where = "next_offset > 0" if table == "projection_offsets" else "true"
        a, columns = _rows(live, table, key, where)
        b, _ = _rows(rebuilt, table, key, where)
        compared += max(len(a), len(b))
        for k in sorted(a.keys() | b.keys(), key=_sortable):
            if len(differences) >= max_differences:
                return differences, compared
            if k not in b:
                differences.append(Difference(table, k, "only live"))
            elif k not in a:
                differences.append(Difference(table, k, "only replay"))
            elif a[k] != b[k]:
                changed = tuple((c, x, y) for c, x, y in zip(columns, a[k], b[k], strict=True) if x != y)
                differences.append(Difference(table, k, "differs", changed))
    return differences, compared


def _rows(conn: psycopg.Connection, table: str, key: Sequence[str],
          where: str = "true") -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], list[str]]:
    cur = conn.execute(sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(table), sql.SQL(where)))
    columns = [d.name for d in cur.description or ()]
    index = [columns.index(k) for k in key]
    rows = {tuple(r[i] for i in index): tuple(r) for r in cur.fetchall()}
    return rows, columns


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((v is None, v if v is not None else 0) for v in key)
