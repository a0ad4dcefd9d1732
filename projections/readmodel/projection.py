"""The read-model projection: convert -> load -> fold -> write, plus offsets, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import psycopg
from psycopg.types.json import set_json_loads

from events.errors import UnprojectableEvent
from projections.cost import PriceTable
from projections.db import connect_async
from projections.readmodel import sink
from projections.readmodel.convert import convert_at
from projections.readmodel.fold import ReadModel
from projections.readmodel.ops import Op
from projections.runner import OffsetsMoved, PartitionChunk, PoisonError, Projection, TopicPartition

NAME = "readmodel"


class ReadModelProjection(Projection):
    name = NAME

    def __init__(self, conn: psycopg.AsyncConnection, prices: PriceTable | None = None) -> None:
        self.conn = conn
        self.prices = prices or PriceTable()

    @classmethod
    async def open(cls, database_url: str, schema: str = "public",
                   prices: PriceTable | None = None) -> ReadModelProjection:
        conn = await connect_async(database_url, schema=schema)
        # Safe for a projection: a server crash can lose only the last commits, and it loses their
        # offsets with them, so those records are simply applied again. Saves an fsync per batch.
        await conn.execute("SET synchronous_commit TO off")
        await conn.commit()
        set_json_loads(orjson.loads, conn)  # rows loaded back carry jsonb (cost breakdowns, statuses)
        await sink.prepare(conn)
        return cls(conn, prices)

    async def close(self) -> None:
        await self.conn.close()

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        async with self.conn.transaction():
            # rows exist before any worker locks them, so two projectors starting together serialise
            async with self.conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO projection_offsets (projection, topic, partition, next_offset) "
                    "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
                    [(self.name, t, p) for t, p in partitions])
            cur = await self.conn.execute(
                "SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = %s",
                (self.name,))
            stored = {(t, p): o for t, p, o in await cur.fetchall()}
        return {tp: stored[tp] for tp in partitions}

    async def apply(self, chunks: Sequence[PartitionChunk]) -> None:
        op_list = self._convert(chunks)
        try:
            async with self.conn.transaction():
                await self._claim(chunks)
                model = ReadModel(self.prices)
                await sink.load(self.conn, model, op_list)
                try:
                    model.apply_all(op_list)
                except UnprojectableEvent as exc:  # anything else the fold raises is a bug: it crashes
                    raise PoisonError(f"{type(exc).__name__}: {exc}") from exc
                await sink.write(self.conn, model)
                await self._store_quarantined(chunks)
                async with self.conn.cursor() as cur:
                    await cur.executemany(
                        "UPDATE projection_offsets SET next_offset = %s "
                        "WHERE projection = %s AND topic = %s AND partition = %s",
                        [(c.next_offset, self.name, c.topic, c.partition) for c in chunks])
        except psycopg.DataError as exc:  # a value Postgres refuses (out of range, bad text): content
            raise PoisonError(f"the database refused a value: {exc}") from exc

    def _convert(self, chunks: Sequence[PartitionChunk]) -> list[Op]:
        op_list: list[Op] = []
        extend = op_list.extend
        for chunk in chunks:
            topic, partition = chunk.topic, chunk.partition
            for record, event in chunk.events:
                try:
                    extend(convert_at(event, topic, partition, record.offset))
                except UnprojectableEvent as exc:
                    raise PoisonError(f"{event.SCHEMA_NAME} does not convert: {exc}") from exc
        return op_list

    async def _claim(self, chunks: Sequence[PartitionChunk]) -> None:
        """Lock the chunks' offset rows; they must still be where the chunks start."""
        for chunk in chunks:
            cur = await self.conn.execute(
                "SELECT next_offset FROM projection_offsets WHERE projection = %s AND topic = %s "
                "AND partition = %s FOR UPDATE", (self.name, chunk.topic, chunk.partition))
            row = await cur.fetchone()
            stored = row[0] if row else 0
            if stored != chunk.start_offset:
                raise OffsetsMoved(f"{chunk.topic}[{chunk.partition}] is at {stored}, "
                                   f"expected {chunk.start_offset}")

    async def _store_quarantined(self, chunks: Sequence[PartitionChunk]) -> None:
        entries = [q for c in chunks for q in c.quarantined]
        if not entries:
            return
        async with self.conn.cursor() as cur:
            await cur.executemany(
                'INSERT INTO quarantine (topic, partition, "offset", projection, event_type, reason, raw, '
                "quarantined_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(q.record.topic, q.record.partition, q.record.offset, self.name, q.event_type, q.reason,
                  q.record.value, q.record.timestamp_ms) for q in entries])
