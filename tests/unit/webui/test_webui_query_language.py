"""The v1 query language compiles each term to the documented condition, or names the bad term."""

from __future__ import annotations

import pytest

from services.webui.query_language import QueryError, batch_condition, job_condition


def rendered(condition: tuple) -> tuple[str, list[object]]:
    composed, params = condition
    return composed.as_string(None), params


def test_an_empty_query_matches_everything() -> None:
    assert rendered(batch_condition("")) == ("TRUE", [])
    assert rendered(job_condition("   ")) == ("TRUE", [])


@pytest.mark.parametrize(("q", "sql", "params"), [
    ("user:alice", '("user" = %s)', ["alice"]),
    ("billing_project:lab", '("billing_project" = %s)', ["lab"]),
    ("env=prod", "(attributes ->> %s = %s)", ["env", "prod"]),
    ("k=a=b", "(attributes ->> %s = %s)", ["k", "a=b"]),  # only the first '=' separates
    ("has:name", "(attributes ? %s)", ["name"]),
    ("running", "(state = 'running')", []),
    ("!success", "NOT ((state = 'complete' AND n_failed = 0 AND n_cancelled = 0 AND NOT cancelled))", []),
    ("failure open", "(n_failed > 0) AND (time_closed IS NULL)", []),
])
def test_batch_terms(q: str, sql: str, params: list[object]) -> None:
    assert rendered(batch_condition(q)) == (sql, params)


@pytest.mark.parametrize(("q", "sql", "params"), [
    ("job_id=7", "(job_id = %s)", [7]),
    ("live", "(state = ANY(%s))", [["Ready", "Creating", "Running"]]),
    ("bad", "(state = ANY(%s))", [["Error", "Failed"]]),
    ("done", "(state = ANY(%s))", [["Success", "Failed", "Error", "Cancelled"]]),
    ("!pending", "NOT (state = ANY(%s))", [["Pending"]]),
    ("name=align", "((name = %s OR attributes ->> 'name' = %s))", ["align", "align"]),
    ("has:shard tier=2", "(attributes ? %s) AND (attributes ->> %s = %s)", ["shard", "tier", "2"]),
])
def test_job_terms(q: str, sql: str, params: list[object]) -> None:
    assert rendered(job_condition(q)) == (sql, params)


@pytest.mark.parametrize(("compile_query", "q", "message"), [
    (batch_condition, "colour:blue", "unknown batch query term 'colour:blue'"),
    (batch_condition, "!", "'!' must be followed by a term"),
    (job_condition, "job_id=x", "job_id must be a number"),
    (job_condition, "open", "unknown job query term 'open'"),
])
def test_bad_terms_are_named(compile_query, q: str, message: str) -> None:  # noqa: ANN001
    with pytest.raises(QueryError, match=message):
        compile_query(q)
