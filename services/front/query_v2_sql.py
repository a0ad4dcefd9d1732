"""The v2 query AST (services.front.query_v2) compiled to SQL over the read-model tables.

Every value is a bound parameter; the SQL text is built only from the fixed fragments below and
the operator's fixed spelling, never from the query's text.

Aliases, as in the v1 compiler (services.front.query): batches are `front_batches f` LEFT JOINed
with the read model's `batches b` (which may lag); jobs are the read model's `jobs j`, and
`attempts` is read through correlated subqueries.

Semantics are Hail's (`front_end/query/query.py`):
- `state` for batches: `complete` when every committed job has completed, `running` otherwise,
  `cancelled` when the batch was cancelled, `failure` when a job failed, `success` when every
  committed job succeeded; `open` matches nothing (squall has no open batches), `closed` everything.
- Jobs: `start_time` and `duration` hold when some attempt matches; `end_time` is the job's end
  (its last attempt's); `instance` holds when some attempt ran on a matching instance;
  `instance_collection` is Hail's name for the pool (`standard`, `highmem-np`, ..., `job-private`).
- A negated comparison (`!=`, `!~`) on an attribute needs the attribute (a batch without `name`
  matches neither `name = x` nor `name != x`); `exit_code != N` also matches jobs without an exit code.
- `=~`/`!~` and bare words match part of the text ignoring case (as Hail's MySQL collation does);
  `%` and `_` in them are literal. Exact matches are case-sensitive.
"""

from __future__ import annotations

from typing import Final

from services.front.query import Condition
from services.front.query_v2 import (
    JOB_STATES,
    AttributeCompare,
    CostCompare,
    DurationCompare,
    ExitCodeCompare,
    IdCompare,
    Op,
    Query,
    StateIs,
    Term,
    TextCompare,
    TextMatch,
    TimeCompare,
)

_SQL_OP: Final = {Op.EQ: "=", Op.NE: "<>", Op.GT: ">", Op.GE: ">=", Op.LT: "<", Op.LE: "<=",
                  Op.LIKE: "ILIKE", Op.NOT_LIKE: "NOT ILIKE"}

_BATCH_COMPLETE: Final = "coalesce(b.n_completed, 0) >= f.n_committed_jobs"
_BATCH_STATES: Final = {
    "open": "FALSE",
    "closed": "TRUE",
    "complete": _BATCH_COMPLETE,
    "running": f"NOT ({_BATCH_COMPLETE})",
    "cancelled": "f.cancelled OR coalesce(b.cancelled, false)",
    "failure": "coalesce(b.n_failed, 0) > 0",
    "success": f"{_BATCH_COMPLETE} AND coalesce(b.n_succeeded, 0) = f.n_committed_jobs",
}
_BATCH_COLUMNS: Final = {"user": "f.user_name", "billing_project": "f.billing_project"}

_ATTEMPT_OF_JOB: Final = "SELECT 1 FROM attempts a WHERE a.batch_id = j.batch_id AND a.job_id = j.job_id AND "
_INSTANCE_COLLECTION: Final = (
    "(CASE WHEN j.spec -> 'resources' ->> 'machine_type' IS NOT NULL THEN 'job-private' "
    "ELSE coalesce(j.worker_type, 'standard') || CASE WHEN j.preemptible THEN '' ELSE '-np' END END)")


def like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards and escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _value(op: Op, value: str) -> str:
    return like_pattern(value) if op in (Op.LIKE, Op.NOT_LIKE) else value


def batch_condition(query: Query) -> Condition:
    assert query.listing == "batches"
    cond = Condition()
    for term in query.terms:
        _batch_term(cond, term)
    return cond


def job_condition(query: Query) -> Condition:
    assert query.listing == "jobs"
    cond = Condition()
    for term in query.terms:
        _job_term(cond, term)
    return cond


def _batch_term(cond: Condition, term: Term) -> None:
    match term:
        case TextMatch(text, exact=True):
            cond.add("f.attributes ? {v} OR EXISTS (SELECT 1 FROM jsonb_each_text(f.attributes) AS a(key, value) "
                     "WHERE a.value = {v})", False, v=text)
        case TextMatch(text, exact=False):
            cond.add("EXISTS (SELECT 1 FROM jsonb_each_text(f.attributes) AS a(key, value) "
                     "WHERE a.key ILIKE {p} OR a.value ILIKE {p})", False, p=like_pattern(text))
        case StateIs(word, op):
            cond.add(_BATCH_STATES[word], op.negated)
        case IdCompare("batch_id", op, value):
            cond.add(f"f.batch_id {_SQL_OP[op]} {{v}}", False, v=value)
        case TextCompare("user" | "billing_project" as name, op, value):
            cond.add(f"{_BATCH_COLUMNS[name]} {_SQL_OP[op]} {{v}}", False, v=value)
        case TimeCompare("start_time", op, ms):
            cond.add(f"f.time_created {_SQL_OP[op]} {{v}}", False, v=ms)
        case TimeCompare("end_time", op, ms):
            cond.add(f"{_BATCH_COMPLETE} AND b.time_completed {_SQL_OP[op]} {{v}}", False, v=ms)
        case DurationCompare(op, ms):
            cond.add(f"{_BATCH_COMPLETE} AND b.time_completed - f.time_created {_SQL_OP[op]} {{v}}", False, v=ms)
        case CostCompare(op, usd):
            cond.add(f"coalesce(b.cost, 0) {_SQL_OP[op]} {{v}}", False, v=usd)
        case AttributeCompare(key, op, value):
            cond.add(f"f.attributes ->> {{k}} {_SQL_OP[op]} {{v}}", False, k=key, v=_value(op, value))
        case _:
            raise AssertionError(f"not a batch term: {term!r}")  # the parser never builds one


def _job_term(cond: Condition, term: Term) -> None:
    match term:
        case TextMatch(text, exact=True):
            cond.add("j.attributes ? {v} OR EXISTS (SELECT 1 FROM jsonb_each_text(j.attributes) AS t(key, value) "
                     f"WHERE t.value = {{v}}) OR EXISTS ({_ATTEMPT_OF_JOB}a.instance_name = {{v}})", False, v=text)
        case TextMatch(text, exact=False):
            cond.add("EXISTS (SELECT 1 FROM jsonb_each_text(j.attributes) AS t(key, value) "
                     f"WHERE t.key ILIKE {{p}} OR t.value ILIKE {{p}}) "
                     f"OR EXISTS ({_ATTEMPT_OF_JOB}a.instance_name ILIKE {{p}})", False, p=like_pattern(text))
        case StateIs(word, op):
            cond.add("j.state = ANY({s})", op.negated, s=list(JOB_STATES[word]))
        case IdCompare("job_id", op, value):
            cond.add(f"j.job_id {_SQL_OP[op]} {{v}}", False, v=value)
        case ExitCodeCompare(op, None):
            cond.add("j.exit_code IS NULL", op.negated)
        case ExitCodeCompare(Op.NE, value):
            cond.add("j.exit_code IS DISTINCT FROM {v}", False, v=value)
        case ExitCodeCompare(op, value):
            cond.add(f"j.exit_code {_SQL_OP[op]} {{v}}", False, v=value)
        case TextCompare("instance", op, value):
            cond.add(f"EXISTS ({_ATTEMPT_OF_JOB}a.instance_name {_SQL_OP[op]} {{v}})", False, v=_value(op, value))
        case TextCompare("instance_collection", op, value):
            cond.add(f"{_INSTANCE_COLLECTION} {_SQL_OP[op]} {{v}}", False, v=_value(op, value))
        case TimeCompare("start_time", op, ms):
            cond.add(f"EXISTS ({_ATTEMPT_OF_JOB}a.start_time {_SQL_OP[op]} {{v}})", False, v=ms)
        case TimeCompare("end_time", op, ms):
            cond.add(f"j.end_time {_SQL_OP[op]} {{v}}", False, v=ms)
        case DurationCompare(op, ms):
            cond.add(f"EXISTS ({_ATTEMPT_OF_JOB}a.end_time - a.start_time {_SQL_OP[op]} {{v}})", False, v=ms)
        case CostCompare(op, usd):
            cond.add(f"j.cost {_SQL_OP[op]} {{v}}", False, v=usd)
        case AttributeCompare(key, op, value):
            cond.add(f"j.attributes ->> {{k}} {_SQL_OP[op]} {{v}}", False, k=key, v=_value(op, value))
        case _:
            raise AssertionError(f"not a job term: {term!r}")
