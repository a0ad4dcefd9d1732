"""The operator's view of the pools: the autoscaler's latest decision per pool beside the instances.

Decisions are the read model's `pool_decisions` (one row per PoolScalingDecided), so the page shows
what the autoscaler decided and why (look-ahead demand, limits, standing workers, zone weights), in
the words of `events.core.autoscale_explain`, the same words `squall audit --pool` prints.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from events.core.autoscale_explain import describe_pool_decision, zone_summary

Row = dict[str, Any]
HISTORY_LIMIT = 200


async def _rows(conn: AsyncConnection, query: str, params: Any = None) -> list[Row]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchall()


def _with_words(row: Row) -> Row:
    row["summary"] = describe_pool_decision(row["decision"])
    row["zone_summary"] = zone_summary(row["decision"])
    return row


async def latest_decisions(conn: AsyncConnection) -> dict[str, Row]:
    rows = await _rows(conn, """
        SELECT DISTINCT ON (pool) pool, occurred_at, producer, decision, topic, "partition", "offset"
        FROM pool_decisions ORDER BY pool, occurred_at DESC, "offset" DESC""")
    return {row["pool"]: _with_words(row) for row in rows}


async def decision_history(conn: AsyncConnection, pool: str, limit: int = HISTORY_LIMIT) -> list[Row]:
    """A pool's decisions, newest first (its audit trail on the page)."""
    rows = await _rows(conn, """
        SELECT pool, occurred_at, producer, event_id, decision, topic, "partition", "offset"
        FROM pool_decisions WHERE pool = %s ORDER BY occurred_at DESC, "offset" DESC LIMIT %s""", (pool, limit))
    return [_with_words(row) for row in rows]


async def latest_decision(conn: AsyncConnection, pool: str) -> Row | None:
    rows = await _rows(conn, """
        SELECT pool, occurred_at, decision FROM pool_decisions WHERE pool = %s
        ORDER BY occurred_at DESC, "offset" DESC LIMIT 1""", (pool,))
    return rows[0] if rows else None


def pool_overview(summaries: list[Row], instances: list[Row], decisions: dict[str, Row]) -> list[Row]:
    """Each pool's instance summary (readmodels.summarise_pools) with its standing workers, zones and
    latest decision; a pool the autoscaler decided about but that has no instances is listed too."""
    by_pool = {s["pool"]: s for s in summaries}
    for name in decisions:
        by_pool.setdefault(name, {"pool": name, "states": {}, "cores_mcpu": 0, "used_mcpu": 0, "memory_bytes": 0,
                                  "n_running": 0, "utilisation": None})
    for pool in by_pool.values():
        live = [i for i in instances if (i["pool"] or "(job-private)") == pool["pool"]
                and i["state"] in ("pending", "active")]
        pool["standing"] = sum(1 for i in live if i.get("standing"))
        zones: dict[str, int] = {}
        for i in live:
            if i.get("zone"):
                zones[i["zone"]] = zones.get(i["zone"], 0) + 1
        pool["zones"] = zones
        pool["decision"] = decisions.get(pool["pool"])
    return sorted(by_pool.values(), key=lambda p: p["pool"])
