"""The Postgres side of the read-model projection: load the rows a batch touches, write what changed.

Set-based on purpose (replay must be fast): one SELECT per table joined to UNNEST-ed keys, COPY for
new rows and audit entries, COPY into a per-connection staging table + one UPDATE ... FROM for
changed rows. Everything runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from projections.readmodel import ops
from projections.readmodel.copytext import JsonMemo, rows_copy_bytes
from projections.readmodel.fold import Key, ReadModel
from projections.readmodel.needs import GROUPS_OF_BATCH, keys_to_load
from projections.readmodel.tables import AUDIT, JOB_GROUPS, POOL_DECISIONS, STATEFUL, Table

_BY_NAME = {t.name: t for t in STATEFUL}
# the Postgres types of each table's key columns, to UNNEST typed arrays
_KEY_TYPES = {
    "batches": ("bigint",), "batch_updates": ("bigint", "int"), "jobs": ("bigint", "int"),
    "attempts": ("bigint", "int", "text"), "instances": ("text",), "job_groups": ("bigint", "int"),
}


def _stage(table: Table) -> str:
    return f"stage_{table.name}"


async def prepare(conn: psycopg.AsyncConnection) -> None:
    """Create this connection's staging tables (temporary; emptied at each commit)."""
    async with conn.transaction():
        for table in STATEFUL:
            cols = sql.SQL(", ").join(map(sql.Identifier, table.key + table.mutable))
            await conn.execute(sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
            ).format(sql.Identifier(_stage(table)), cols, sql.Identifier(table.name)))


async def load(conn: psycopg.AsyncConnection, model: ReadModel, op_list: Iterable[ops.Op]) -> None:
    """Hold in `model` every existing row the ops will read."""
    wanted = keys_to_load(op_list)
    group_batches = wanted.pop(GROUPS_OF_BATCH, set())
    if group_batches:
        await _load_groups(conn, model, [k[0] for k in group_batches])
    for name, keys in wanted.items():
        if keys:
            await _load_keys(conn, model, _BY_NAME[name], keys)


async def _load_keys(conn: psycopg.AsyncConnection, model: ReadModel, table: Table, keys: set[Key]) -> None:
    types = _KEY_TYPES[table.name]
    columns = list(zip(*keys, strict=True))
    unnest = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in types)
    key_names = [f"k{i}" for i in range(len(types))]
    join = sql.SQL(" AND ").join(
        sql.SQL("t.{} = k.{}").format(sql.Identifier(c), sql.Identifier(k)) for c, k in zip(table.key, key_names, strict=True))
    query = sql.SQL("SELECT {} FROM {} t JOIN unnest({}) AS k({}) ON {}").format(
        sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in table.loaded),
        sql.Identifier(table.name), unnest, sql.SQL(", ").join(map(sql.Identifier, key_names)), join)
    cur = await conn.execute(query, [_array_literal(c, t == "text") for c, t in zip(columns, types, strict=True)])
    n_key = len(table.key)
    for record in await cur.fetchall():
        model.load(table.name, tuple(record[:n_key]), dict(zip(table.loaded, record, strict=True)))


def _array_literal(values: Iterable[Any], text: bool) -> str:
    """The array's text form, e.g. {1,NULL} or {"a","b\\"c"}, cast by the query to the column's array
    type: building it is many times cheaper than psycopg adapting a list value by value."""
    if not text:
        return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"
    return "{" + ",".join(["NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for v in values]) + "}"


async def _load_groups(conn: psycopg.AsyncConnection, model: ReadModel, batch_ids: list[int]) -> None:
    table = JOB_GROUPS
    query = sql.SQL("SELECT {} FROM job_groups WHERE batch_id = ANY(%s::bigint[])").format(
        sql.SQL(", ").join(map(sql.Identifier, table.loaded)))
    cur = await conn.execute(query, (_array_literal(batch_ids, False),))
    for record in await cur.fetchall():
        model.load(table.name, (record[0], record[1]), dict(zip(table.loaded, record, strict=True)))


COPY_PIECE = 2_000  # rows formatted and sent at a time: PostgreSQL parses one piece while we format the next


async def _copy(conn: psycopg.AsyncConnection, table: Table, target: str, columns: tuple[str, ...],
                rows: Sequence[Any], attributes: bool = False, json_memo: JsonMemo | None = None) -> None:
    """COPY `columns` of rows (dicts; with `attributes`, objects with those attributes) into `target`."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(target), sql.SQL(", ").join(map(sql.Identifier, columns)))
    format_rows = rows_copy_bytes(columns, table.json, attributes)
    async with conn.cursor().copy(statement) as copy:
        for start in range(0, len(rows), COPY_PIECE):
            await copy.write(format_rows(rows[start:start + COPY_PIECE], json_memo))


async def write(conn: psycopg.AsyncConnection, model: ReadModel) -> None:
    """Write every row the fold created or changed, the audit entries and the update commits."""
    json_memo = JsonMemo()  # nothing changes the rows while they are written
    for table in STATEFUL:
        new = model.new[table.name]
        if new:
            rows = model.rows[table.name]
            await _copy(conn, table, table.name, table.columns, [rows[k] for k in sorted(new)], json_memo=json_memo)
        dirty = model.dirty[table.name]
        if dirty:
            await _update(conn, model, table, dirty, json_memo)
    for batch_id, update_id in model.committed_updates:  # jobs of the update this batch did not hold
        await conn.execute("UPDATE jobs SET committed = true WHERE batch_id = %s AND update_id = %s AND NOT committed",
                           (batch_id, update_id))
    await end_attempts(conn, model.ended_attempts)
    if model.audit:
        # RecordAudit's fields are named as the audit table's columns
        await _copy(conn, AUDIT, AUDIT.name, AUDIT.key + AUDIT.fixed, model.audit, attributes=True)
    if model.pool_decisions:  # so are RecordPoolDecision's
        await _copy(conn, POOL_DECISIONS, POOL_DECISIONS.name, POOL_DECISIONS.key + POOL_DECISIONS.fixed,
                    model.pool_decisions, attributes=True, json_memo=json_memo)


async def end_attempts(conn: psycopg.AsyncConnection, ended: Sequence[tuple[int, int, str, int]]) -> None:
    """End as cancelled the attempts the fold refused without holding their rows (fold.ended_attempts)."""
    for batch_id, job_id, attempt_id, at in ended:
        await conn.execute("UPDATE attempts SET end_time = %s, reason = 'cancelled' WHERE batch_id = %s "
                           "AND job_id = %s AND attempt_id = %s AND end_time IS NULL", (at, batch_id, job_id, attempt_id))


async def _update(conn: psycopg.AsyncConnection, model: ReadModel, table: Table, keys: set[Key],
                  json_memo: JsonMemo | None = None) -> None:
    rows = model.rows[table.name]
    columns = table.key + table.mutable
    await _copy(conn, table, _stage(table), columns, [rows[k] for k in sorted(keys)], json_memo=json_memo)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in table.mutable)
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = s.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in table.key)
    await conn.execute(sql.SQL("UPDATE {} t SET {} FROM {} s WHERE {}").format(
        sql.Identifier(table.name), assignments, sql.Identifier(_stage(table)), match))
    # empty the staging table now, not only at commit, so a second write in this transaction starts clean
    await conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(_stage(table))))
