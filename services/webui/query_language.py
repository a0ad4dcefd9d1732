"""Hail's v1 query language (`q=`) for batch and job lists, compiled to a SQL condition.

Whitespace-separated terms, all of which must hold; a leading `!` negates a term.
  batches: k=v (attribute), has:k, user:X, billing_project:X,
           open closed complete running cancelled failure success
  jobs:    k=v (attribute; `name` also matches the job's name), job_id=N, has:k,
           pending ready creating running live cancelled error failed bad success done

Interim: the front end will own the canonical parser (services/front); when it lands, the UI
should call it instead of this module so both answer a query identically.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

_JOB_STATE_WORDS = {
    "pending": ("Pending",),
    "ready": ("Ready",),
    "creating": ("Creating",),
    "running": ("Running",),
    "live": ("Ready", "Creating", "Running"),
    "cancelled": ("Cancelled",),
    "error": ("Error",),
    "failed": ("Failed",),
    "bad": ("Error", "Failed"),
    "success": ("Success",),
    "done": ("Success", "Failed", "Error", "Cancelled"),
}

_BATCH_WORDS = {
    "open": sql.SQL("time_closed IS NULL"),
    "closed": sql.SQL("time_closed IS NOT NULL"),
    "complete": sql.SQL("state = 'complete'"),
    "running": sql.SQL("state = 'running'"),
    "cancelled": sql.SQL("(cancelled OR n_cancelled > 0)"),
    "failure": sql.SQL("n_failed > 0"),
    "success": sql.SQL("(state = 'complete' AND n_failed = 0 AND n_cancelled = 0 AND NOT cancelled)"),
}


class QueryError(ValueError):
    """A term the language does not have; the message names it and what is allowed."""


Condition = tuple[sql.Composable, list[object]]


def batch_condition(q: str) -> Condition:
    """A condition over the `batches` table (TRUE for an empty query)."""
    return _conjunction(q, _batch_term)


def job_condition(q: str) -> Condition:
    """A condition over the `jobs` table (TRUE for an empty query)."""
    return _conjunction(q, _job_term)


def _conjunction(q: str, compile_term: Callable[[str], Condition]) -> Condition:
    parts: list[sql.Composable] = []
    params: list[object] = []
    for raw in q.split():
        negated = raw.startswith("!")
        term = raw[1:] if negated else raw
        if not term:
            raise QueryError("'!' must be followed by a term, e.g. !success")
        condition, term_params = compile_term(term)
        parts.append(sql.SQL("NOT ({})").format(condition) if negated else sql.SQL("({})").format(condition))
        params.extend(term_params)
    if not parts:
        return sql.SQL("TRUE"), []
    return sql.SQL(" AND ").join(parts), params


def _attribute_term(term: str) -> Condition | None:
    if term.startswith("has:"):
        return sql.SQL("attributes ? %s"), [term.removeprefix("has:")]
    if "=" in term:
        key, value = term.split("=", 1)
        return sql.SQL("attributes ->> %s = %s"), [key, value]
    return None


def _batch_term(term: str) -> Condition:
    for prefix, column in (("user:", "user"), ("billing_project:", "billing_project")):
        if term.startswith(prefix):
            return sql.SQL("{} = %s").format(sql.Identifier(column)), [term.removeprefix(prefix)]
    if term in _BATCH_WORDS:
        return _BATCH_WORDS[term], []
    attribute = _attribute_term(term)
    if attribute is not None:
        return attribute
    raise QueryError(f"unknown batch query term {term!r}: use k=v, has:k, user:X, billing_project:X "
                     f"or one of {', '.join(_BATCH_WORDS)}")


def _job_term(term: str) -> Condition:
    if term.startswith("job_id="):
        value = term.removeprefix("job_id=")
        if not value.isdigit():
            raise QueryError(f"job_id must be a number in {term!r}")
        return sql.SQL("job_id = %s"), [int(value)]
    if term.startswith("name="):
        value = term.removeprefix("name=")
        return sql.SQL("(name = %s OR attributes ->> 'name' = %s)"), [value, value]
    if term in _JOB_STATE_WORDS:
        return sql.SQL("state = ANY(%s)"), [list(_JOB_STATE_WORDS[term])]
    attribute = _attribute_term(term)
    if attribute is not None:
        return attribute
    raise QueryError(f"unknown job query term {term!r}: use k=v, job_id=N, has:k "
                     f"or one of {', '.join(_JOB_STATE_WORDS)}")
