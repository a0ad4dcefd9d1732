"""The snapshot store in PostgreSQL (tables of projections/migrations/006_fold_snapshots.sql).

One connection, opened on first use and reopened after a failure; every method is one transaction.
Errors surface as SnapshotStoreError: a caller treats a store it cannot reach as "no snapshot" when
loading (and refolds) and as "not saved" when saving (and tries again later); the fold never stops
for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TypeVar

import psycopg

from projections.db import connect_async
from projections.snapshots.store import (
    BatchRow,
    PartitionMark,
    SnapshotStoreError,
    TopicPartition,
    ViewSnapshot,
    dominates,
)

T = TypeVar("T")

_UPSERT_ROW = """
    INSERT INTO snapshot_batches (topic, batch_id, partition, format, as_of, quiescent, state)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (topic, batch_id) DO UPDATE
        SET partition = EXCLUDED.partition, format = EXCLUDED.format, as_of = EXCLUDED.as_of,
            quiescent = EXCLUDED.quiescent, state = EXCLUDED.state
        WHERE snapshot_batches.format <> EXCLUDED.format OR EXCLUDED.as_of >= snapshot_batches.as_of"""

_UPSERT_MARK = """
    INSERT INTO snapshot_partitions (topic, partition, format, next_offset) VALUES (%s, %s, %s, %s)
    ON CONFLICT (topic, partition) DO UPDATE
        SET format = EXCLUDED.format, next_offset = EXCLUDED.next_offset, written_at = now()
        WHERE snapshot_partitions.format <> EXCLUDED.format
           OR EXCLUDED.next_offset > snapshot_partitions.next_offset"""


class PostgresSnapshotStore:
    def __init__(self, database_url: str, schema: str = "public", connect_timeout_s: int = 5) -> None:
        self._url = database_url
        self._schema = schema
        self._timeout = connect_timeout_s
        self._conn: psycopg.AsyncConnection | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            try:
                async with asyncio.timeout(self._timeout):
                    self._conn = await connect_async(self._url, schema=self._schema, autocommit=True)
            except (psycopg.Error, TimeoutError) as exc:
                raise SnapshotStoreError(f"cannot connect to the snapshot store: {exc!r}") from exc
        return self._conn

    async def _run(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        conn = await self._connection()
        try:
            async with conn.transaction():
                return await work(conn)
        except psycopg.Error as exc:
            if conn.broken:
                self._conn = None
            raise SnapshotStoreError(f"snapshot store: {exc}") from exc

    async def partition_mark(self, topic: str, partition: int) -> PartitionMark | None:
        async def work(conn: psycopg.AsyncConnection) -> PartitionMark | None:
            row = await (await conn.execute(
                "SELECT format, next_offset FROM snapshot_partitions WHERE topic = %s AND partition = %s",
                (topic, partition))).fetchone()
            return PartitionMark(row[0], row[1]) if row else None
        return await self._run(work)

    async def active_batches(self, topic: str, partition: int) -> list[BatchRow]:
        async def work(conn: psycopg.AsyncConnection) -> list[BatchRow]:
            cur = await conn.execute(
                "SELECT batch_id, format, as_of, quiescent, state FROM snapshot_batches "
                "WHERE topic = %s AND partition = %s AND NOT quiescent ORDER BY batch_id", (topic, partition))
            return [BatchRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in await cur.fetchall()]
        return await self._run(work)

    async def batches(self, topic: str, batch_ids: Collection[int]) -> list[BatchRow]:
        if not batch_ids:
            return []

        async def work(conn: psycopg.AsyncConnection) -> list[BatchRow]:
            cur = await conn.execute(
                "SELECT batch_id, format, as_of, quiescent, state FROM snapshot_batches "
                "WHERE topic = %s AND batch_id = ANY(%s) ORDER BY batch_id", (topic, sorted(set(batch_ids))))
            return [BatchRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in await cur.fetchall()]
        return await self._run(work)

    async def save_partition(self, topic: str, partition: int, mark: PartitionMark,
                             rows: Sequence[BatchRow]) -> None:
        async def work(conn: psycopg.AsyncConnection) -> None:
            async with conn.cursor() as cur:
                if rows:
                    await cur.executemany(_UPSERT_ROW, [(topic, r.batch_id, partition, r.format, r.as_of,
                                                         r.quiescent, r.blob) for r in rows])
                await cur.execute(_UPSERT_MARK, (topic, partition, mark.format, mark.next_offset))
        await self._run(work)

    async def view_head(self, name: str) -> ViewSnapshot | None:
        async def work(conn: psycopg.AsyncConnection) -> ViewSnapshot | None:
            row = await (await conn.execute("SELECT format, positions FROM snapshot_views WHERE name = %s",
                                            (name,))).fetchone()
            return ViewSnapshot(row[0], _positions(row[1]), b"") if row else None
        return await self._run(work)

    async def view(self, name: str) -> ViewSnapshot | None:
        async def work(conn: psycopg.AsyncConnection) -> ViewSnapshot | None:
            row = await (await conn.execute("SELECT format, positions, state FROM snapshot_views WHERE name = %s",
                                            (name,))).fetchone()
            return ViewSnapshot(row[0], _positions(row[1]), bytes(row[2])) if row else None
        return await self._run(work)

    async def save_view(self, name: str, snapshot: ViewSnapshot) -> bool:
        async def work(conn: psycopg.AsyncConnection) -> bool:
            row = await (await conn.execute("SELECT format, positions FROM snapshot_views WHERE name = %s FOR UPDATE",
                                            (name,))).fetchone()
            if row is not None and row[0] == snapshot.format and not dominates(snapshot.positions,
                                                                               _positions(row[1])):
                return False
            positions = json.dumps(sorted([t, p, o] for (t, p), o in snapshot.positions.items()))
            await conn.execute(
                "INSERT INTO snapshot_views (name, format, positions, state) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET format = EXCLUDED.format, positions = EXCLUDED.positions, "
                "state = EXCLUDED.state, written_at = now()",
                (name, snapshot.format, positions, snapshot.blob))
            return True
        return await self._run(work)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def _positions(stored: object) -> dict[TopicPartition, int]:
    triples = json.loads(stored) if isinstance(stored, str) else stored
    return {(str(t), int(p)): int(o) for t, p, o in triples}  # type: ignore[union-attr]
