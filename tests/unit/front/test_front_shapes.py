"""Status shapes, the v1 query language compiler and the why-explanations: pure functions."""

from __future__ import annotations

import pytest

from services.front.errors import InvalidRequest
from services.front.query import batch_condition, job_condition
from services.front.shapes import batch_status, derived_state, humanize_ms, time_str
from services.front.why import explain


def test_times_are_formatted_as_hail_does():
    assert time_str(1_700_000_000_123) == "2023-11-14T22:13:20.123Z"
    assert time_str(0) == "1970-01-01T00:00:00.000Z"
    assert time_str(None) is None
    assert humanize_ms(1500) == "1.5s" and humanize_ms(125_000) == "2m 5s" and humanize_ms(3_720_000) == "1h 2m"


@pytest.mark.parametrize(("n_failed", "cancelled", "n_cancelled", "complete", "state"), [
    (1, True, 1, True, "failure"),
    (0, True, 0, False, "cancelled"),
    (0, False, 2, True, "cancelled"),
    (0, False, 0, True, "success"),
    (0, False, 0, False, "running"),
])
def test_state_is_derived_in_hails_order(n_failed, cancelled, n_cancelled, complete, state):
    assert derived_state(n_failed=n_failed, cancelled=cancelled, n_cancelled=n_cancelled, complete=complete) == state


def _front_row(**kw):
    row = {"batch_id": 7, "user_name": "alice", "billing_project": "p", "token": "t", "attributes": {"a": "b"},
           "time_created": 1000, "cancelled": False, "n_committed_jobs": 3, "n_completed": None,
           "n_succeeded": None, "n_failed": None, "n_cancelled": None, "b_cancelled": None, "time_closed": None,
           "time_completed": None, "msec_mcpu": None, "cost": None, "cost_breakdown": None}
    row.update(kw)
    return row


def test_a_batch_the_projection_has_not_seen_is_running_not_complete():
    status = batch_status(_front_row())
    assert status["state"] == "running" and status["complete"] is False and status["n_jobs"] == 3
    assert status["attributes"] == {"a": "b"} and status["cost_breakdown"] == []


def test_a_lagging_projection_never_completes_a_batch_early():
    # the projection has counted 2 completions of the first update, the front knows 3 committed jobs
    status = batch_status(_front_row(n_completed=2, n_succeeded=2, time_completed=5000))
    assert status["complete"] is False and status["time_completed"] is None


def test_a_completed_batch():
    status = batch_status(_front_row(n_completed=3, n_succeeded=3, time_completed=4000, time_closed=1500,
                                     cost_breakdown={"cpu": 0.5}))
    assert status["state"] == "success" and status["complete"] is True and status["duration_ms"] == 3000
    assert status["time_completed"] == "1970-01-01T00:00:04.000Z"
    assert status["cost_breakdown"] == [{"resource": "cpu", "cost": 0.5}]


def test_batch_query_terms_compile_to_bound_parameters():
    cond = batch_condition("name=x !has:tag user:alice billing_project:p complete !failure")
    where = cond.where()
    assert "NOT (f.attributes ? %(q2)s)" in where
    assert list(cond.params.values()) == ["name", "x", "tag", "alice", "p"]
    with pytest.raises(InvalidRequest, match="unknown term 'bogus'"):
        batch_condition("bogus")


def test_job_query_terms():
    cond = job_condition("job_id=3 live !bad name=a")
    assert cond.params["q0"] == 3
    assert cond.params["q1"] == ["Ready", "Creating", "Running"]
    assert "NOT (j.state = ANY(%(q2)s))" in cond.where()
    for bad in ("job_id=x", "frobnicate", "!"):
        with pytest.raises(InvalidRequest):
            job_condition(bad)


def _job(**kw):
    row = {"state": "Ready", "exit_code": None, "reason": None, "current_attempt_id": None, "not_before": None}
    row.update(kw)
    return row


def test_why_explanations():
    assert explain(_job(state="Pending"), None, {1: "Running", 2: "Success"}, 0)["message"].startswith(
        "waiting for 1 parent job(s) to complete: 1")
    assert explain(_job(not_before=10_000), None, {}, 5_000)["reason_code"] == "backoff"
    scheduler = {"reason_code": "no_capacity", "message": "no room", "updated_at": 1000}
    answer = explain(_job(), scheduler, {}, 0)
    assert answer["source"] == "scheduler" and answer["message"] == "no room"
    assert explain(_job(state="Failed", exit_code=2), None, {}, 0)["message"] == "the job finished as Failed with exit code 2"
    assert explain(_job(state="Running", current_attempt_id="a1"), None, {}, 0)["message"] == "attempt a1 is running"
