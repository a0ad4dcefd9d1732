"""One contract for every snapshot store: the in-memory fake and PostgreSQL.

The rules (projections/snapshots/store.py): a batch row is replaced only by one no older or of
another format, a partition's mark only grows (or changes format), a view is replaced only by one
at or past it in every partition (or of another format).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from projections.db import READMODEL_MIGRATIONS, migrate
from projections.snapshots.postgres import PostgresSnapshotStore
from projections.snapshots.store import (
    BatchRow,
    MemorySnapshotStore,
    PartitionMark,
    SnapshotStore,
    ViewSnapshot,
)

T = "t.batch-events"


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SnapshotStore]:
    if request.param == "memory":
        yield MemorySnapshotStore()
        return
    url = request.getfixturevalue("fresh_db")
    migrate(url, [READMODEL_MIGRATIONS])
    pg = PostgresSnapshotStore(url)
    try:
        yield pg
    finally:
        await pg.close()


def row(batch_id: int, as_of: int, blob: bytes = b"s", quiescent: bool = False, fmt: str = "f1") -> BatchRow:
    return BatchRow(batch_id, fmt, as_of, quiescent, blob)


async def test_an_empty_store_has_nothing(store: SnapshotStore) -> None:
    assert await store.partition_mark(T, 0) is None
    assert await store.active_batches(T, 0) == []
    assert await store.batches(T, [1, 2]) == []
    assert await store.view("v") is None
    assert await store.view_head("v") is None


async def test_a_partition_saves_its_rows_and_mark_together(store: SnapshotStore) -> None:
    await store.save_partition(T, 3, PartitionMark("f1", 100), [row(1, 100, b"one"), row(2, 100, b"two", True)])
    await store.save_partition(T, 4, PartitionMark("f1", 7), [row(5, 7)])
    assert await store.partition_mark(T, 3) == PartitionMark("f1", 100)
    assert await store.active_batches(T, 3) == [row(1, 100, b"one")]  # the quiescent one stays stored
    assert await store.batches(T, [2, 1, 99]) == [row(1, 100, b"one"), row(2, 100, b"two", True)]
    assert await store.active_batches(T, 4) == [row(5, 7)]
    assert await store.batches("other.batch-events", [1]) == []  # another stack's topic: nothing shared


async def test_rows_only_move_forward_unless_the_format_changes(store: SnapshotStore) -> None:
    await store.save_partition(T, 0, PartitionMark("f1", 50), [row(1, 50, b"at50")])
    await store.save_partition(T, 0, PartitionMark("f1", 40), [row(1, 40, b"at40")])  # a slower owner
    assert await store.batches(T, [1]) == [row(1, 50, b"at50")]
    assert await store.partition_mark(T, 0) == PartitionMark("f1", 50)
    await store.save_partition(T, 0, PartitionMark("f1", 50), [row(1, 50, b"again", True)])  # same offset: rewritten
    assert await store.batches(T, [1]) == [row(1, 50, b"again", True)]
    await store.save_partition(T, 0, PartitionMark("f2", 30), [row(1, 30, b"new format", fmt="f2")])
    assert await store.batches(T, [1]) == [row(1, 30, b"new format", fmt="f2")]
    assert await store.partition_mark(T, 0) == PartitionMark("f2", 30)


async def test_big_rows_round_trip(store: SnapshotStore) -> None:
    blob = bytes(range(256)) * 40_000  # 10 MB
    await store.save_partition(T, 0, PartitionMark("f1", 1), [row(1, 1, blob)])
    assert (await store.batches(T, [1]))[0].blob == blob


async def test_a_view_is_replaced_only_by_one_at_or_past_it(store: SnapshotStore) -> None:
    first = ViewSnapshot("f1", {("t.a", 0): 10, ("t.a", 1): 5, ("t.b.c", 0): 3}, b"first")
    assert await store.save_view("v", first)
    assert await store.view("v") == first
    assert await store.view_head("v") == ViewSnapshot("f1", first.positions, b"")
    behind = ViewSnapshot("f1", {("t.a", 0): 11, ("t.a", 1): 4, ("t.b.c", 0): 3}, b"behind in one partition")
    assert not await store.save_view("v", behind)
    assert await store.view("v") == first
    ahead = ViewSnapshot("f1", {("t.a", 0): 10, ("t.a", 1): 6, ("t.b.c", 0): 3, ("t.a", 2): 1}, b"ahead")
    assert await store.save_view("v", ahead)
    assert await store.view("v") == ahead
    other_format = ViewSnapshot("f2", {("t.a", 0): 1}, b"another version")
    assert await store.save_view("v", other_format)
    assert await store.view("v") == other_format
    assert await store.view("w") is None


@pytest.mark.postgres
async def test_a_read_model_database_without_the_snapshot_tables_gets_them(fresh_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A database migrated before the snapshots existed (every read-model migration below the
    snapshot one, read-model data kept) upgrades in place when a fold starts with snapshots."""
    import shutil

    import psycopg

    snapshot_migration = next(p for p in sorted(READMODEL_MIGRATIONS.glob("*.sql")) if "fold_snapshots" in p.name)
    for earlier in sorted(READMODEL_MIGRATIONS.glob("*.sql")):
        if earlier.name < snapshot_migration.name:
            shutil.copy(earlier, tmp_path / earlier.name)
    migrate(fresh_db, [tmp_path])
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT to_regclass('snapshot_views')").fetchone() == (None,)
    assert snapshot_migration.name in migrate(fresh_db, [READMODEL_MIGRATIONS])
    pg = PostgresSnapshotStore(fresh_db)
    try:
        await pg.save_view("v", ViewSnapshot("f1", {(T, 0): 5}, b"state"))
        stored = await pg.view("v")
        assert stored is not None and stored.blob == b"state"
    finally:
        await pg.close()
