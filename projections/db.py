"""PostgreSQL helpers for the read models: connections pinned to a schema, and numbered migrations.

    with connect(url, schema="public") as conn: ...
    migrate(url, [READMODEL_MIGRATIONS, Path("services/front/migrations")], schema="public")

A migration directory holds `NNN_name.sql` files (NNN: digits). `migrate` applies, per directory in
the order given, every file not yet recorded in the schema's `schema_migrations` table, in number
order, all in one transaction under an advisory lock, so processes that start together do not
race. Applied files are append-only: changing one that was applied is an error (add NNN+1 instead).
SQL files never name a schema; they run with `search_path` set to the target schema, which is how
replay builds the same tables in a fresh schema.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

READMODEL_MIGRATIONS = Path(__file__).with_name("migrations")

_FILE_NAME = re.compile(r"^(\d+)_[A-Za-z0-9_]+\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(RuntimeError):
    """A migration directory or the recorded history is inconsistent; the message says what to fix."""


@dataclass(frozen=True)
class Migration:
    number: int
    name: str  # the file name, e.g. "001_readmodel.sql"; the key recorded in schema_migrations
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema name {schema!r} must be lower-case letters, digits and _ "
                         "(at most 63, not starting with a digit)")
    return schema


def connect(url: str, schema: str = "public", autocommit: bool = False) -> psycopg.Connection:
    """A connection whose search_path is `schema` (then public, for extensions)."""
    check_schema_name(schema)
    options = f"-c search_path={schema},public" if schema != "public" else "-c search_path=public"
    return psycopg.connect(url, autocommit=autocommit, options=options)


async def connect_async(url: str, schema: str = "public", autocommit: bool = False) -> psycopg.AsyncConnection:
    check_schema_name(schema)
    options = f"-c search_path={schema},public" if schema != "public" else "-c search_path=public"
    return await psycopg.AsyncConnection.connect(url, autocommit=autocommit, options=options)


def load_migrations(directory: Path) -> list[Migration]:
    """The directory's NNN_name.sql files in number order; a duplicate number or a stray .sql is an error."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationError(f"migration directory {directory} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files must be named NNN_name.sql (e.g. 002_add_index.sql)")
        number = int(match.group(1))
        if number in found:
            raise MigrationError(f"{path}: number {number} is also used by {found[number].name}; renumber one")
        found[number] = Migration(number=number, name=path.name, sql=path.read_text())
    return [found[n] for n in sorted(found)]


def plan(directories: Sequence[Path]) -> list[Migration]:
    """Every migration of every directory, directory by directory; names must be unique overall."""
    ordered: list[Migration] = []
    seen: set[str] = set()
    for directory in directories:
        for migration in load_migrations(directory):
            if migration.name in seen:
                raise MigrationError(f"migration {migration.name} exists in two directories; "
                                     "give each directory's files distinct names (e.g. 001_front.sql)")
            seen.add(migration.name)
            ordered.append(migration)
    return ordered


def migrate(conn_or_url: psycopg.Connection | str, migration_dirs: Iterable[Path | str],
            schema: str = "public") -> list[str]:
    """Apply the pending migrations of `migration_dirs` to `schema` (created if missing).

    Returns the names applied now (empty when up to date). Idempotent and safe to call
    concurrently from several processes.
    """
    check_schema_name(schema)
    migrations = plan([Path(d) for d in migration_dirs])
    if isinstance(conn_or_url, str):
        with psycopg.connect(conn_or_url) as conn:
            return _migrate(conn, migrations, schema)
    return _migrate(conn_or_url, migrations, schema)


def _migrate(conn: psycopg.Connection, migrations: list[Migration], schema: str) -> list[str]:
    applied_now: list[str] = []
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()  # start from a clean transaction so the lock and DDL commit together
    with conn.transaction():
        # one lock per schema: concurrent starters wait, then find the work done
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('squall.migrate.' || %s))", (schema,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        conn.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )""")
        recorded: dict[str, str] = dict(conn.execute("SELECT name, checksum FROM schema_migrations").fetchall())
        for migration in migrations:
            previous = recorded.get(migration.name)
            if previous is not None:
                if previous != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} changed after it was applied to schema {schema!r}; "
                        "applied migrations are append-only: revert the edit and add a new numbered file")
                continue
            try:
                conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                raise MigrationError(f"migration {migration.name} failed in schema {schema!r}: {exc}") from exc
            conn.execute("INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                         (migration.name, migration.checksum))
            applied_now.append(migration.name)
    return applied_now


def drop_schema(url: str, schema: str) -> None:
    """Drop a schema and everything in it (replay's scratch schemas). Refuses 'public'."""
    check_schema_name(schema)
    if schema == "public":
        raise ValueError("refusing to drop schema 'public'")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
