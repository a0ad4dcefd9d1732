"""Does the front end hold every fact the log holds? Part of `squall replay --verify`.

The front's tables (services/front/migrations) are not projections: the front writes them to reserve
ids and deduplicate retries, some before it appends (a batch, an update, a cancel), some just after
(a bunch's groups and job range, a commit). So the rule is one way: what the log says about a batch,
its updates, groups and jobs, the front must say too. A front row with no event yet is not a fault
(a request in flight, or one the front crashed in and the client never retried).

The rebuilt read model is the log's side; the live front tables are read on a fresh connection after
the rebuild, so a request that was between its append and its row when the replay's position was taken
has finished by then (front rows are only added, and their flags only set). Cancellation is not
compared: the log also cancels on its own (cancel_after_n_failures), the front's flag records a request.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from projections.differences import Difference

FRONT_TABLES = ("front_batches", "front_updates", "front_job_groups", "front_job_ranges")
MISSING = "in the log, not in the front's table"
ONE_WAY = frozenset({"committed", "deleted"})  # a flag the log has set must be set in the front, not conversely


@dataclass(frozen=True)
class FrontCheck:
    table: str
    n_key: int
    query: str  # key columns, whether the front lacks the row, then (column, log, front) triples; {log}: the rebuilt schema


CHECKS = (
    FrontCheck("front_batches", 1, """
        SELECT b.batch_id, f.batch_id IS NULL,
               'user_name', b."user", f.user_name, 'billing_project', b.billing_project, f.billing_project,
               'token', b.token, f.token, 'deleted', b.deleted, f.deleted
        FROM {log}.batches b LEFT JOIN front_batches f ON f.batch_id = b.batch_id
        WHERE f.batch_id IS NULL OR b."user" <> f.user_name OR b.billing_project <> f.billing_project
              OR b.token <> f.token OR (b.deleted AND NOT f.deleted)"""),
    FrontCheck("front_updates", 2, """
        SELECT u.batch_id, u.update_id, f.update_id IS NULL,
               'token', u.token, f.token, 'n_jobs', u.n_jobs, f.n_jobs, 'n_job_groups', u.n_job_groups, f.n_job_groups,
               'start_job_id', u.start_job_id, f.start_job_id,
               'start_job_group_id', u.start_job_group_id, f.start_job_group_id,
               'committed', u.committed, f.committed
        FROM {log}.batch_updates u
        LEFT JOIN front_updates f ON f.batch_id = u.batch_id AND f.update_id = u.update_id
        WHERE f.update_id IS NULL OR u.token <> f.token OR u.n_jobs <> f.n_jobs OR u.n_job_groups <> f.n_job_groups
              OR u.start_job_id <> f.start_job_id OR u.start_job_group_id <> f.start_job_group_id
              OR (u.committed AND NOT f.committed)"""),
    FrontCheck("front_job_groups", 2, """
        SELECT g.batch_id, g.job_group_id, f.job_group_id IS NULL,
               'parent_job_group_id', g.parent_job_group_id, f.parent_job_group_id
        FROM {log}.job_groups g
        LEFT JOIN front_job_groups f ON f.batch_id = g.batch_id AND f.job_group_id = g.job_group_id
        WHERE f.job_group_id IS NULL OR g.parent_job_group_id IS DISTINCT FROM f.parent_job_group_id"""),
    # a job whose JobCreated is in the log lies in a range the front recorded for its update (else a
    # commit's count would miss it, and a resent bunch would be appended again)
    FrontCheck("front_job_ranges", 2, """
        SELECT j.batch_id, j.job_id, true
        FROM {log}.jobs j JOIN {log}.batch_updates u ON u.batch_id = j.batch_id AND u.update_id = j.update_id
        WHERE NOT EXISTS (SELECT 1 FROM front_job_ranges r
                          WHERE r.batch_id = j.batch_id AND r.update_id = j.update_id
                            AND j.job_id - u.start_job_id + 1 BETWEEN r.first_job_id AND r.last_job_id)"""),
)


def has_front_tables(conn: psycopg.Connection) -> bool:
    """Whether this database has a front end (a read model alone, as some deployments and tests run)."""
    found = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
                         "AND table_name = ANY(%s)", (list(FRONT_TABLES),)).fetchone()
    return found is not None and found[0] == len(FRONT_TABLES)


def check_front_tables(live: psycopg.Connection, log_schema: str, limit: int = 100) -> list[Difference]:
    """Facts of the rebuilt read model (`log_schema`) that the live front tables (`live`'s schema) lack
    or contradict: "differs" lists (column, front's value, log's value)."""
    out: list[Difference] = []
    for check in CHECKS:
        if len(out) >= limit:
            break
        query = sql.SQL(check.query).format(log=sql.Identifier(log_schema)) + sql.SQL(" LIMIT {}").format(
            sql.Literal(limit - len(out)))
        for row in live.execute(query).fetchall():
            key, missing, rest = tuple(row[:check.n_key]), row[check.n_key], row[check.n_key + 1:]
            if missing:
                out.append(Difference(check.table, key, MISSING))
                continue
            triples = ((rest[i], rest[i + 1], rest[i + 2]) for i in range(0, len(rest), 3))
            changed = tuple((column, front, log) for column, log, front in triples
                            if log != front and (column not in ONE_WAY or log))
            out.append(Difference(check.table, key, "differs", changed))
    return out
