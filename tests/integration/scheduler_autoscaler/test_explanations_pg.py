"""The scheduler's "why not scheduled" rows in PostgreSQL: written on change, removed once placed."""

from __future__ import annotations

import psycopg
import pytest

from events.core.explain import Explanation, Reason
from services.scheduler.explanations import ExplanationWriter

pytestmark = pytest.mark.postgres


def rows(url: str) -> list[tuple[int, int, str, str, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT batch_id, job_id, reason_code, message, updated_at "
                            "FROM scheduling_explanations ORDER BY batch_id, job_id").fetchall()


def no_capacity(job_id: int) -> Explanation:
    return Explanation(batch_id=1, job_id=job_id, reason=Reason.NO_CAPACITY,
                       detail=(("pool", "standard"), ("regions", None), ("cores_mcpu", 1000),
                               ("memory_bytes", 4 * 1024**3), ("storage_gib", 0)))


async def test_reasons_are_upserted_on_change_and_deleted_when_the_job_is_placed(fresh_db: str) -> None:
    writer = ExplanationWriter(fresh_db)
    await writer.start()  # applies the read-model migrations (the table is theirs) on an empty database
    try:
        writer.record([no_capacity(1), no_capacity(2)], placed=[], now_ms=100)
        await writer.flush()
        assert [(b, j, code, at) for b, j, code, _, at in rows(fresh_db)] == [(1, 1, "no_capacity", 100),
                                                                              (1, 2, "no_capacity", 100)]
        assert "no instance in pool standard has 1 cores" in rows(fresh_db)[0][3]
        n = writer.n_writes
        writer.record([no_capacity(1), no_capacity(2)], placed=[], now_ms=200)  # unchanged: nothing written
        await writer.flush()
        assert writer.n_writes == n and rows(fresh_db)[0][4] == 100
        backoff = Explanation(batch_id=1, job_id=2, reason=Reason.BACKOFF, detail=(("not_before_ms", 5000),))
        writer.record([backoff], placed=[(1, 1)], now_ms=300)
        await writer.flush()
        assert [(j, code, at) for _, j, code, _, at in rows(fresh_db)] == [(2, "backoff", 300)]
    finally:
        await writer.close()
