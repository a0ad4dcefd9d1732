"""Rebuild mode: folding the log from offset 0 into a fresh schema, several times faster than live.

The live projection (projection.py) must be stoppable at any moment, so each transaction loads
the rows its events touch, folds them, writes them back and stores the offsets: a job touched by
events in six transactions is loaded and written six times. A rebuild into a fresh schema needs
none of that: nobody reads the schema until the rebuild is done, and a rebuild that fails is run
again from scratch. So this projection, with the same convert and the same fold:
- keeps the row images in memory from one chunk to the next and writes each row once, when the
  rebuild ends or when the row is evicted to keep memory bounded (`max_held_jobs`; an evicted
  row is loaded back, by primary key, if a later event touches it, and then written back as an
  update, exactly as the live sink does);
- COPYs the audit rows (and the pools' decisions) as they come, into tables that have no index yet;
- writes into UNLOGGED tables whose secondary indexes are built once at the end
  (`prepare_schema` / `finish_schema`: the index definitions are read back from the catalogue,
  so they are whatever the migrations made).

What it cannot do is quarantine a record whose content the fold or PostgreSQL refuses: the live
projection finds such a record by rolling back and bisecting its transaction, but here the
effects of a chunk are not undone by a rollback. It raises `BulkRebuildFailed` instead, and
`projections.replay.rebuild` then rebuilds with the live, transactional projection (same rows,
at the live rate). Records that do not decode are quarantined as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from events.errors import UnprojectableEvent
from projections.cost import PriceTable
from projections.db import connect
from projections.readmodel import ops, sink
from projections.readmodel.copytext import JsonMemo
from projections.readmodel.fold import COMPLETE_STATES, Key, ReadModel
from projections.readmodel.needs import GROUPS_OF_BATCH, keys_to_load
from projections.readmodel.projection import ReadModelProjection
from projections.readmodel.tables import (
    ATTEMPTS,
    AUDIT,
    BATCH_UPDATES,
    BATCHES,
    JOB_GROUPS,
    JOBS,
    POOL_DECISIONS,
    PROJECTED,
    STATEFUL,
)
from projections.runner import PartitionChunk, PoisonError, TopicPartition

BULK_FAILED = 3  # exit status of a `python -m projections.readmodel --bulk` shard that raised BulkRebuildFailed
DEFAULT_MAX_HELD_JOBS = 200_000  # about 1.1 GB of row images (measured ~5.5 KB per job with its attempt)
_BY_BATCH = (BATCHES, BATCH_UPDATES, JOB_GROUPS, JOBS, ATTEMPTS)  # tables whose key starts with batch_id


class BulkRebuildFailed(Exception):
    """A record's content cannot be applied in rebuild mode: rebuild with the live projection."""


def prepare_schema(database_url: str, schema: str) -> list[str]:
    """Make the freshly migrated tables of `schema` UNLOGGED and drop their secondary indexes
    (every index that backs no constraint); returns the statements that recreate them."""
    with connect(database_url, schema=schema) as conn, conn.transaction():
        rows = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = %s AND i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = i.schemaname AND c.conname = i.indexname) ORDER BY i.indexname",
            (schema, list(PROJECTED))).fetchall()
        for table in PROJECTED:
            conn.execute(sql.SQL("ALTER TABLE {} SET UNLOGGED").format(sql.Identifier(table)))
        for name, _ in rows:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(schema, name)))
    return [definition for _, definition in rows]


def finish_schema(database_url: str, schema: str, index_definitions: Sequence[str], connections: int = 2) -> None:
    """Build the indexes `prepare_schema` dropped, on `connections` connections at once (PostgreSQL
    builds several indexes of one table concurrently). No ANALYZE: autovacuum does it, as for the
    live tables (on the jobs' specs it would cost more than the index builds)."""
    pending = list(index_definitions)
    pending.sort(key=lambda ddl: " audit " not in ddl)  # the largest table first

    def build() -> None:
        with connect(database_url, schema=schema, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem TO '256MB'")
            while True:
                try:
                    ddl = pending.pop(0)  # atomic: the threads share the list
                except IndexError:
                    return
                conn.execute(ddl)  # type: ignore[arg-type]  # the catalogue's own DDL

    with ThreadPoolExecutor(max_workers=max(1, connections)) as pool:
        for done in [pool.submit(build) for _ in range(connections)]:
            done.result()


class BulkReadModelProjection(ReadModelProjection):
    """The read-model projection in rebuild mode (see the module docstring). One per runner worker;
    it must be given the offsets the rebuild stops at."""

    def __init__(self, conn: psycopg.AsyncConnection, prices: PriceTable | None, until: dict[TopicPartition, int],
                 max_held_jobs: int = DEFAULT_MAX_HELD_JOBS) -> None:
        super().__init__(conn, prices)
        self.model = ReadModel(self.prices)  # held across chunks: rows not yet written are in model.new/dirty
        self.until = until
        self.max_held_jobs = max_held_jobs
        self.offsets: dict[TopicPartition, int] = {}
        self.evicted_batches: set[int] = set()  # batches some of whose rows were written and dropped
        self.jobs_of_batch: dict[int, set[Key]] = {}  # held job keys per batch (CommitUpdate reads them)
        self.n_indexed = 0  # keys in jobs_of_batch

    @classmethod
    async def open_bulk(cls, database_url: str, schema: str, until: dict[TopicPartition, int],
                        prices: PriceTable | None = None,
                        max_held_jobs: int = DEFAULT_MAX_HELD_JOBS) -> BulkReadModelProjection:
        live = await ReadModelProjection.open(database_url, schema=schema, prices=prices)
        return cls(live.conn, live.prices, until, max_held_jobs)

    async def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        stored = await super().stored_offsets(partitions)
        if any(stored.values()):
            raise BulkRebuildFailed(f"rebuild mode needs a fresh schema, but offsets are stored: {stored}")
        self.offsets = dict(stored)
        return stored

    async def apply(self, chunks: Sequence[PartitionChunk]) -> None:
        try:
            op_list = self._convert(chunks)
        except PoisonError as exc:
            raise BulkRebuildFailed(str(exc)) from exc
        try:
            async with self.conn.transaction():
                if self.evicted_batches:
                    await self._load_evicted(op_list)
                try:
                    self._fold(op_list)
                except UnprojectableEvent as exc:  # a bug in the fold crashes, as in the live projection
                    raise BulkRebuildFailed(f"{type(exc).__name__}: {exc}") from exc
                await self._write_audit()
                await self._store_quarantined(chunks)
                for chunk in chunks:
                    self.offsets[(chunk.topic, chunk.partition)] = chunk.next_offset
                if all(offset >= self.until.get(tp, 0) for tp, offset in self.offsets.items()):
                    await self._write_rows(None)
                    await self._store_offsets()
                elif len(self.model.rows[JOBS.name]) > self.max_held_jobs:
                    await self._evict()
            # The held rows are acyclic and freed by reference counting; without this the cyclic
            # collector traverses all of them again and again as they grow (a third of the CPU).
            # What is frozen stays out of the collector for the life of the process (a replay).
            gc.freeze()
        except psycopg.DataError as exc:
            raise BulkRebuildFailed(f"the database refused a value: {exc}") from exc

    # --- folding ----------------------------------------------------------------------------
    def _fold(self, op_list: list[ops.Op]) -> None:
        """model.apply_all, except that a CommitUpdate sees only the held jobs of its own batch (the
        fold looks through every held job for the update's; here that is every job in memory)."""
        start = 0
        for i, op in enumerate(op_list):
            if type(op) is ops.CommitUpdate:
                self._fold_segment(op_list[start:i])
                self._commit(op)
                start = i + 1
        self._fold_segment(op_list[start:] if start else op_list)

    def _fold_segment(self, op_list: list[ops.Op]) -> None:
        self.model.apply_all(op_list)
        jobs = self.model.rows[JOBS.name]
        self._index(key for op in op_list if type(op) is ops.CreateJob
                    and (key := (op.batch_id, op.job_id)) in jobs)  # type: ignore[union-attr]

    def _index(self, keys: Iterable[Key]) -> None:
        for key in keys:
            held = self.jobs_of_batch.setdefault(key[0], set())
            if key not in held:
                held.add(key)
                self.n_indexed += 1

    def _commit(self, op: ops.CommitUpdate) -> None:
        model = self.model
        jobs = model.rows[JOBS.name]
        held = self.jobs_of_batch.get(op.batch_id, set())
        if self.n_indexed != len(jobs):  # a job was held some other way (cannot happen today): reindex
            self._reindex()
            held = self.jobs_of_batch.get(op.batch_id, set())
        model.rows[JOBS.name] = {key: jobs[key] for key in held}
        try:
            model.apply(op)
        finally:
            model.rows[JOBS.name] = jobs

    def _reindex(self) -> None:
        self.jobs_of_batch, self.n_indexed = {}, 0
        self._index(self.model.rows[JOBS.name])

    # --- rows written earlier ---------------------------------------------------------------
    async def _load_evicted(self, op_list: list[ops.Op]) -> None:
        """Load back the written-and-dropped rows these ops read (only those: a row neither held nor
        written does not exist yet)."""
        rows, evicted = self.model.rows, self.evicted_batches
        wanted = keys_to_load(op_list)
        groups_of = [b for (b,) in wanted.pop(GROUPS_OF_BATCH, set()) if b in evicted and (b,) not in rows[BATCHES.name]]
        if groups_of:
            await sink._load_groups(self.conn, self.model, groups_of)
        for table in _BY_BATCH:
            held = rows[table.name]
            missing = {k for k in wanted.get(table.name, ()) if k[0] in evicted and k not in held}
            if missing:
                await sink._load_keys(self.conn, self.model, table, missing)
                if table is JOBS:
                    self._index(k for k in missing if k in held)

    # --- writing ----------------------------------------------------------------------------
    async def _write_audit(self) -> None:
        model = self.model
        if model.audit:
            await sink._copy(self.conn, AUDIT, AUDIT.name, AUDIT.key + AUDIT.fixed, model.audit, attributes=True)
            model.audit = []
        if model.pool_decisions:  # append-only like the audit rows (the autoscaler's decisions)
            await sink._copy(self.conn, POOL_DECISIONS, POOL_DECISIONS.name, POOL_DECISIONS.key + POOL_DECISIONS.fixed,
                             model.pool_decisions, attributes=True)
            model.pool_decisions = []
        for batch_id, update_id in model.committed_updates:
            if batch_id in self.evicted_batches:  # jobs of the update that were written already
                await self.conn.execute("UPDATE jobs SET committed = true WHERE batch_id = %s AND update_id = %s "
                                        "AND NOT committed", (batch_id, update_id))
        model.committed_updates = []
        await sink.end_attempts(self.conn, model.ended_attempts)  # rows written (evicted) already
        model.ended_attempts = []

    async def _write_rows(self, keys: dict[str, set[Key]] | None) -> None:
        """Write the held rows of `keys` (None: every held row) that are new or changed, and drop
        them from memory."""
        model = self.model
        memo = JsonMemo()
        for table in STATEFUL:
            held = model.rows[table.name]
            chosen = set(held) if keys is None else keys.get(table.name, set())
            if not chosen:
                continue
            new, dirty = model.new[table.name], model.dirty[table.name]
            inserts = sorted(chosen & new)
            if inserts:
                await sink._copy(self.conn, table, table.name, table.columns, [held[k] for k in inserts],
                                 json_memo=memo)
            updates = chosen & dirty
            if updates:
                await sink._update(self.conn, model, table, updates, memo)
            new -= chosen
            dirty -= chosen
            for key in chosen:
                del held[key]

    async def _store_offsets(self) -> None:
        async with self.conn.cursor() as cur:
            await cur.executemany(
                "UPDATE projection_offsets SET next_offset = %s WHERE projection = %s AND topic = %s AND partition = %s",
                [(offset, self.name, t, p) for (t, p), offset in self.offsets.items()])

    async def _evict(self) -> None:
        """Write and drop rows until at most half of `max_held_jobs` jobs are held: first whole
        batches that are complete, then completed jobs (with their attempts), then any jobs."""
        rows = self.model.rows
        jobs = rows[JOBS.name]
        target = self.max_held_jobs // 2
        chosen: dict[str, set[Key]] = {t.name: set() for t in STATEFUL}
        # complete with jobs: a batch with none committed yet is "complete" too, and about to get them
        batches = [b for (b,), batch in rows[BATCHES.name].items() if batch["state"] == "complete" and batch["n_jobs"]]
        n_jobs = len(jobs)
        if batches:
            done = set(batches)
            for table in _BY_BATCH:
                chosen[table.name] = {k for k in rows[table.name] if k[0] in done}
            n_jobs -= len(chosen[JOBS.name])
        if n_jobs > target:
            remaining = [k for k in jobs if k not in chosen[JOBS.name]]
            remaining.sort(key=lambda k: (jobs[k]["state"] not in COMPLETE_STATES, k))  # completed first
            extra = set(remaining[:n_jobs - target])
            chosen[JOBS.name] |= extra
            chosen[ATTEMPTS.name] |= {k for k in rows[ATTEMPTS.name] if (k[0], k[1]) in extra}
        await self._write_rows(chosen)
        self.evicted_batches |= {k[0] for table in _BY_BATCH for k in chosen[table.name]}
        self._reindex()

