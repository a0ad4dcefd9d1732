"""projections.db: numbered migrations against a real PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from projections.db import READMODEL_MIGRATIONS, MigrationError, connect, drop_schema, migrate

pytestmark = pytest.mark.postgres


def test_applies_in_number_order_once(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "002_second.sql").write_text("INSERT INTO t VALUES (2);")
    (tmp_path / "001_first.sql").write_text("CREATE TABLE t (x int);")
    assert migrate(fresh_db, [tmp_path]) == ["001_first.sql", "002_second.sql"]
    assert migrate(fresh_db, [tmp_path]) == []
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_several_directories_and_a_schema(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "001_front.sql").write_text("CREATE TABLE users (name text PRIMARY KEY);")
    applied = migrate(fresh_db, [READMODEL_MIGRATIONS, tmp_path], schema="replay_x")
    readmodel = sorted(p.name for p in READMODEL_MIGRATIONS.glob("*.sql"))
    assert readmodel[0] == "001_readmodel.sql" and applied == [*readmodel, "001_front.sql"]
    with connect(fresh_db, schema="replay_x") as conn:
        assert conn.execute("SELECT count(*) FROM batches").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    with psycopg.connect(fresh_db) as conn:  # public untouched
        assert conn.execute("SELECT to_regclass('public.batches')").fetchone() == (None,)
    drop_schema(fresh_db, "replay_x")


def test_edited_migration_is_refused(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text("CREATE TABLE t (x int);")
    migrate(fresh_db, [tmp_path])
    (tmp_path / "001_first.sql").write_text("CREATE TABLE t (x bigint);")
    with pytest.raises(MigrationError, match="append-only"):
        migrate(fresh_db, [tmp_path])


def test_bad_file_name_and_failing_sql_name_the_file(fresh_db: str, tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_name.sql"):
        migrate(fresh_db, [tmp_path])
    (tmp_path / "first.sql").unlink()
    (tmp_path / "001_broken.sql").write_text("CREATE TABLE (;")
    with pytest.raises(MigrationError, match="001_broken.sql"):
        migrate(fresh_db, [tmp_path])
    with psycopg.connect(fresh_db) as conn:  # nothing recorded: the transaction rolled back
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)


def test_concurrent_starters_apply_once(fresh_db: str) -> None:
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(fresh_db, [READMODEL_MIGRATIONS])))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n_migrations = len(list(READMODEL_MIGRATIONS.glob("*.sql")))
    assert sorted(map(len, results)) == [0, 0, 0, n_migrations]  # one starter applied them all, once
