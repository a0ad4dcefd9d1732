"""The read-model fold: states, Hail's counters, cost, and idempotence under re-delivery. No database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import catalog as ev
from events.failures import INSTANCE_LOST
from events.log import Position
from projections.cost import PriceTable
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel, UnknownEntity
from tests.fakes.streams import StreamShape, build_stream, job_spec, spec_json

B = 5


class Log:
    """Events with positions, folded into a ReadModel as they are added."""

    def __init__(self) -> None:
        self.model = ReadModel()
        self.offset = 0
        self.t = 1_000

    def add(self, event_type: type, **fields: Any) -> Any:
        self.t += 10
        event = event_type(event_id=f"e{self.offset}", occurred_at=fields.pop("at", self.t), producer="t", **fields)
        self.model.apply_all(convert(event, Position("b", 0, self.offset)))
        self.offset += 1
        return event

    def batch(self, n_jobs: int, groups: bool = True) -> None:
        self.add(ev.BatchCreated, batch_id=B, user="u", billing_project="bp", token="t", attributes={})
        self.add(ev.BatchUpdateCreated, batch_id=B, update_id=1, token="u1", n_jobs=n_jobs, n_job_groups=1,
                 start_job_id=1, start_job_group_id=1)
        if groups:
            self.add(ev.JobGroupCreated, batch_id=B, update_id=1, job_group_id=1, parent_job_group_id=0, attributes={})
            self.add(ev.JobGroupCreated, batch_id=B, update_id=1, job_group_id=2, parent_job_group_id=1, attributes={})
        for j in range(1, n_jobs + 1):
            self.job(j, group=2 if groups else 0)
        self.add(ev.BatchUpdateCommitted, batch_id=B, update_id=1, n_jobs=n_jobs, n_job_groups=1, start_job_id=1,
                 start_job_group_id=1)

    def job(self, j: int, group: int = 0, update: int = 1, cores: int = 1000) -> None:
        spec = job_spec(cores_mcpu=cores, memory_bytes=2 * 1024**3, storage_gib=10, preemptible=True)
        self.add(ev.JobCreated, batch_id=B, job_id=j, update_id=update, job_group_id=group, parent_ids=(),
                 always_run=False, n_max_attempts=3, user="u", billing_project="bp", attributes={"name": f"j{j}"},
                 spec=spec, spec_json=spec_json(spec))

    def run(self, j: int, attempt: str, outcome: str = "Success", start: int = 10_000, end: int = 13_600,
            complete: bool = True, cause: str | None = None) -> None:
        self.schedule(j, attempt)
        self.accept(j, attempt)
        self.add(ev.JobAttemptStarted, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1", started_at=start)
        self.add(ev.JobAttemptCompleted, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1",
                 outcome=outcome, exit_code=0 if outcome == "Success" else 1, failure_cause=cause,
                 out_of_memory=False, started_at=start, ended_at=end, steps=())
        if complete:
            self.add(ev.JobCompleted, batch_id=B, job_id=j, state=outcome, attempt_id=attempt,
                     exit_code=0 if outcome == "Success" else 1, reason=cause, n_attempts=1)

    def schedule(self, j: int, attempt: str) -> None:
        """The scheduler's decision (SJ): nothing to show until the resolver's verdict."""
        self.add(ev.JobAttemptScheduled, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1",
                 scheduler_epoch=1, user="u", cores_mcpu=1000, memory_bytes=2 * 1024**3, storage_gib=10,
                 awaits_verdict=True)

    def accept(self, j: int, attempt: str) -> None:
        self.add(ev.JobAttemptAccepted, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1",
                 state="Running", scheduler_epoch=1, cores_mcpu=1000, memory_bytes=2 * 1024**3, storage_gib=10)

    def ready(self, j: int, after: str | None = None) -> None:
        self.add(ev.JobBecameReady, batch_id=B, job_id=j, after_attempt_id=after, reason="r")

    def row(self, table: str, *key: Any) -> dict[str, Any]:
        return self.model.rows[table][key]


def counters(row: dict[str, Any]) -> tuple[int, ...]:
    return tuple(row[k] for k in ("n_jobs", "n_completed", "n_succeeded", "n_failed", "n_cancelled"))


def test_new_batch_is_complete_with_its_root_group() -> None:
    log = Log()
    log.add(ev.BatchCreated, batch_id=B, user="u", billing_project="bp", token="t", attributes={"a": "b"})
    batch = log.row("batches", B)
    assert batch["state"] == "complete" and counters(batch) == (0, 0, 0, 0, 0)
    assert log.row("job_groups", B, 0)["ancestor_ids"] == [0]


def test_commit_counts_jobs_in_their_group_and_every_ancestor() -> None:
    log = Log()
    log.batch(3)
    assert [log.row("jobs", B, j)["state"] for j in (1, 2, 3)] == ["Pending"] * 3
    assert all(log.row("jobs", B, j)["committed"] for j in (1, 2, 3))
    batch = log.row("batches", B)
    assert (batch["state"], batch["n_jobs"], batch["n_committed_updates"], batch["time_closed"]) == (
        "running", 3, 1, log.t)
    assert log.row("job_groups", B, 2)["ancestor_ids"] == [2, 1, 0]
    assert [log.row("job_groups", B, g)["n_jobs"] for g in (0, 1, 2)] == [3, 3, 3]
    assert log.row("job_groups", B, 2)["state"] == "running"


def test_job_lifecycle_states_timings_and_cost() -> None:
    log = Log()
    log.batch(2)
    log.ready(1)
    assert log.row("jobs", B, 1)["state"] == "Ready"
    log.run(1, "a1", complete=False)
    job = log.row("jobs", B, 1)
    assert (job["state"], job["current_attempt_id"], job["n_attempts"], job["start_time"]) == (
        "Running", "a1", 1, 10_000)
    log.add(ev.JobCompleted, batch_id=B, job_id=1, state="Success", attempt_id="a1", exit_code=0, reason=None,
            n_attempts=1)
    job = log.row("jobs", B, 1)
    assert (job["state"], job["end_time"], job["duration_ms"], job["exit_code"]) == ("Success", 13_600, 3_600, 0)
    # one hour? no: 3.6 s of 1 core = 3,600 ms x 1,000 mCPU
    assert job["msec_mcpu"] == 3_600 * 1000
    prices = PriceTable()
    hours = 3_600 / 3_600_000
    assert job["cost"] == pytest.approx(hours * (prices.cpu_core_hour_preemptible + 2 * prices.memory_gib_hour_preemptible
                                                 + 10 * prices.storage_gib_hour_preemptible
                                                 + prices.service_fee_core_hour))
    assert set(job["cost_breakdown"]) == {"compute/n1-preemptible/1", "memory/n1-preemptible/1",
                                          "disk/local-ssd/preemptible/1", "service-fee/1"}
    assert job["usage"] == {"compute/n1-preemptible/1": 3_600 * 1000, "memory/n1-preemptible/1": 3_600 * 2048,
                            "disk/local-ssd/preemptible/1": 3_600 * 10 * 1024, "service-fee/1": 3_600 * 1000}
    assert job["status"]["attempt_id"] == "a1" and job["status"]["job_group_id"] == 2
    for row in (log.row("batches", B), log.row("job_groups", B, 0), log.row("job_groups", B, 2)):
        assert counters(row) == (2, 1, 1, 0, 0)
        assert row["msec_mcpu"] == job["msec_mcpu"] and row["cost"] == pytest.approx(job["cost"])
    assert log.row("batches", B)["state"] == "running"


def test_last_completion_completes_groups_and_batch_failures_and_cancellations_count() -> None:
    log = Log()
    log.batch(3)
    log.ready(1)
    log.run(1, "a1", outcome="Failed", cause="nonzero_exit")
    log.add(ev.JobCancelled, batch_id=B, job_id=2, reason="parent failed")
    log.ready(3)
    log.run(3, "a3")
    batch = log.row("batches", B)
    assert counters(batch) == (3, 3, 1, 1, 1)
    assert batch["state"] == "complete" and batch["time_completed"] == log.t
    assert log.row("job_groups", B, 2)["state"] == "complete"
    assert log.row("jobs", B, 2)["state"] == "Cancelled" and log.row("jobs", B, 2)["duration_ms"] is None
    log.add(ev.BatchCompleted, batch_id=B, n_jobs=3, n_succeeded=1, n_failed=1, n_cancelled=1)
    assert log.row("batches", B)["time_completed"] != log.t  # already complete: unchanged


def test_retry_after_a_lost_instance_bills_both_attempts() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    log.run(1, "a1", outcome="Error", complete=False, cause=INSTANCE_LOST, start=0, end=1_000)
    log.ready(1, after="a1")
    assert log.row("jobs", B, 1)["state"] == "Ready" and log.row("jobs", B, 1)["current_attempt_id"] is None
    log.run(1, "a2", start=2_000, end=4_000)
    job = log.row("jobs", B, 1)
    assert (job["state"], job["n_attempts"], job["current_attempt_id"]) == ("Success", 2, "a2")
    assert job["msec_mcpu"] == (1_000 + 2_000) * 1000
    assert log.row("attempts", B, 1, "a1")["failure_cause"] == INSTANCE_LOST
    assert log.row("attempts", B, 1, "a2")["outcome"] == "Success"


def test_a_retry_policys_decision_shows_on_the_attempt_it_retries_and_on_the_job() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    log.run(1, "a1", outcome="Failed", complete=False, cause="out_of_memory", start=0, end=1_000)
    log.add(ev.JobBecameReady, batch_id=B, job_id=1, after_attempt_id="a1", reason="retry", retry_rule="oom_memory_multiplier",
            retry_cause="out_of_memory", memory_bytes=4 * 1024**3)
    assert log.row("attempts", B, 1, "a1")["retry"] == {"rule": "oom_memory_multiplier", "cause": "out_of_memory",
                                                         "not_before": None, "memory_bytes": 4 * 1024**3}
    assert (log.row("jobs", B, 1)["memory_bytes"], log.row("jobs", B, 1)["preemptible"]) == (4 * 1024**3, True)
    log.run(1, "a2", outcome="Error", complete=False, cause="preempted", start=2_000, end=3_000)
    log.add(ev.JobBecameReady, batch_id=B, job_id=1, after_attempt_id="a2", not_before=5_000, reason="retry",
            retry_rule="max_preemptions", retry_cause="preempted", memory_bytes=4 * 1024**3, preemptible=False)
    assert log.row("attempts", B, 1, "a2")["retry"]["preemptible"] is False
    assert log.row("jobs", B, 1)["preemptible"] is False  # its next attempts are billed as non-preemptible
    log.add(ev.JobBecameReady, batch_id=B, job_id=1, after_attempt_id="a1", reason="retry",
            retry_rule="system_failure", retry_cause="instance_lost")  # a stale retry changes nothing
    assert log.row("attempts", B, 1, "a1")["retry"]["rule"] == "oom_memory_multiplier"


def test_an_sj_that_raced_a_cancellation_shows_nothing_and_the_job_is_cancelled() -> None:
    """The lifecycle refuses an SJ for a cancelled job and derives JobCancelled; the read model never
    judges the SJ itself, so no attempt is ever opened for it, however the events are chunked."""
    log = Log()
    log.batch(1)
    log.ready(1)
    log.schedule(1, "a1")
    assert log.row("jobs", B, 1)["state"] == "Ready" and not log.model.rows["attempts"]
    log.add(ev.JobCancelled, batch_id=B, job_id=1, reason="batch_cancelled")
    log.add(ev.JobAttemptRefused, batch_id=B, job_id=1, attempt_id="a1", instance_name="i1", state="Running",
            scheduler_epoch=1, reason="cancelled")
    job = log.row("jobs", B, 1)
    assert (job["state"], job["current_attempt_id"], job["reason"], job["n_attempts"]) == (
        "Cancelled", None, "batch_cancelled", 0)
    assert log.model.rows["attempts"] == {}
    assert counters(log.row("batches", B)) == (1, 1, 0, 0, 1)


def test_the_attempt_shows_from_its_verdict_on() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    log.schedule(1, "a1")
    assert log.row("jobs", B, 1)["state"] == "Ready"
    log.accept(1, "a1")
    job, attempt = log.row("jobs", B, 1), log.row("attempts", B, 1, "a1")
    assert (job["state"], job["current_attempt_id"], job["n_attempts"]) == ("Running", "a1", 1)
    assert (attempt["instance_name"], attempt["scheduled_at"], attempt["end_time"]) == ("i1", log.t, None)


def test_an_attempt_its_worker_ended_before_the_verdict_counts_once_the_verdict_lands() -> None:
    """The core takes an SJ where it lands; the worker may run and report (an OOM kill takes a second)
    before the resolver's verdict is in the log. The verdict then opens what the report recorded."""
    log = Log()
    log.batch(1)
    log.ready(1)
    log.schedule(1, "a1")
    log.add(ev.JobAttemptCompleted, batch_id=B, job_id=1, attempt_id="a1", instance_name="i1", outcome="Failed",
            exit_code=137, failure_cause="out_of_memory", out_of_memory=True, started_at=0, ended_at=1_000, steps=())
    log.accept(1, "a1")
    job, attempt = log.row("jobs", B, 1), log.row("attempts", B, 1, "a1")
    assert (job["state"], job["current_attempt_id"], job["n_attempts"]) == ("Running", "a1", 1)
    assert (attempt["scheduled_at"], attempt["outcome"], job["start_time"]) == (log.t, "Failed", 0)
    log.add(ev.JobBecameReady, batch_id=B, job_id=1, after_attempt_id="a1", reason="retry",
            retry_rule="oom_memory_multiplier", retry_cause="out_of_memory", memory_bytes=4 * 1024**3)
    log.accept(1, "a1")  # a re-delivered verdict: the job is past it
    assert (log.row("jobs", B, 1)["state"], log.row("jobs", B, 1)["n_attempts"]) == ("Ready", 1)
    log.run(1, "a2", start=2_000, end=4_000)
    job = log.row("jobs", B, 1)
    assert (job["state"], job["n_attempts"], job["msec_mcpu"]) == ("Success", 2, (1_000 + 2_000) * 1000)


def test_a_job_cancelled_after_an_ended_attempt_keeps_that_attempt_as_it_was() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    log.run(1, "a1", outcome="Error", complete=False, cause=INSTANCE_LOST, start=0, end=1_000)
    ended = dict(log.row("attempts", B, 1, "a1"))
    # the core's verdict on the ended attempt of a cancelled job (it sends no JobCancelled for a job with an
    # attempt: that one is the core's fence too)
    log.add(ev.JobCompleted, batch_id=B, job_id=1, state="Cancelled", attempt_id="a1", exit_code=None,
            reason=INSTANCE_LOST, n_attempts=1)
    assert log.row("attempts", B, 1, "a1") == ended
    assert log.row("jobs", B, 1)["state"] == "Cancelled"


def test_stale_reports_change_nothing() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    log.run(1, "a1", outcome="Error", complete=False, cause=INSTANCE_LOST)
    log.ready(1, after="a1")
    log.run(1, "a2", complete=False)
    before = {t: {k: dict(v) for k, v in rows.items()} for t, rows in log.model.rows.items()}
    log.ready(1, after="a1")  # a retry of an attempt that is no longer current
    log.ready(1)  # the first readiness, re-derived
    log.add(ev.JobAttemptScheduled, batch_id=B, job_id=1, attempt_id="a1", instance_name="i1", scheduler_epoch=1,
            user="u", cores_mcpu=1000, memory_bytes=1, storage_gib=0, awaits_verdict=True)  # an old SJ again
    log.add(ev.JobAttemptScheduled, batch_id=B, job_id=1, attempt_id="zz", instance_name="i2", scheduler_epoch=1,
            user="u", cores_mcpu=1000, memory_bytes=1, storage_gib=0, awaits_verdict=True)  # an SJ that lost a race
    log.accept(1, "a1")  # an old verdict again
    assert log.model.rows == before


def test_a_later_update_reopens_the_batch_and_a_stale_completion_is_ignored() -> None:
    log = Log()
    log.batch(1, groups=False)
    log.ready(1)
    log.run(1, "a1")
    assert log.row("batches", B)["state"] == "complete"
    log.add(ev.BatchUpdateCreated, batch_id=B, update_id=2, token="u2", n_jobs=1, n_job_groups=0, start_job_id=2,
            start_job_group_id=1)
    log.job(2, update=2)
    assert not log.row("jobs", B, 2)["committed"]
    log.add(ev.BatchUpdateCommitted, batch_id=B, update_id=2, n_jobs=1, n_job_groups=0, start_job_id=2,
            start_job_group_id=1)
    assert log.row("batches", B)["state"] == "running" and log.row("batches", B)["time_completed"] is None
    log.add(ev.BatchCompleted, batch_id=B, n_jobs=1, n_succeeded=1, n_failed=0, n_cancelled=0)  # for update 1
    assert log.row("batches", B)["state"] == "running"
    assert counters(log.row("batches", B)) == (2, 1, 1, 0, 0)


def test_cancel_and_delete_flags() -> None:
    log = Log()
    log.batch(1)
    log.add(ev.JobGroupCancelRequested, batch_id=B, job_group_id=2, user="u")
    assert log.row("job_groups", B, 2)["cancelled"] and not log.row("batches", B)["cancelled"]
    log.add(ev.BatchCancelled, batch_id=B)
    assert log.row("batches", B)["cancelled"] and log.row("job_groups", B, 0)["cancelled"]
    log.add(ev.BatchDeleted, batch_id=B, user="u")
    assert log.row("batches", B)["deleted"]


def test_events_for_things_never_created_are_unknown_entities() -> None:
    log = Log()
    with pytest.raises(UnknownEntity, match="batch 5"):
        log.add(ev.BatchUpdateCreated, batch_id=B, update_id=1, token="u", n_jobs=1, n_job_groups=0,
                start_job_id=1, start_job_group_id=1)
    log.batch(0, groups=False)
    with pytest.raises(UnknownEntity, match="job 5/9"):
        log.ready(9)


def test_instance_states_only_move_forward() -> None:
    log = Log()
    log.add(ev.InstanceActivated, instance_name="i", pool="p", cores_mcpu=4000, memory_bytes=1, storage_gib=10,
            region="r", preemptible=True)
    log.add(ev.InstanceHeartbeat, instance_name="i", running_attempt_ids=(), at=50_000)
    log.add(ev.InstanceRequested, instance_name="i", pool="p", provider="local", machine_type="m", cores_mcpu=4000,
            memory_bytes=1, storage_gib=10, preemptible=True, region="r")  # late: fills gaps only
    log.add(ev.InstanceHeartbeat, instance_name="i", running_attempt_ids=(), at=40_000)  # older heartbeat
    row = log.row("instances", "i")
    assert (row["state"], row["provider"], row["last_heartbeat"]) == ("active", "local", 50_000)
    log.add(ev.InstanceDeleted, instance_name="i", reason="idle")
    log.add(ev.InstanceDeactivated, instance_name="i", reason="late")
    assert (log.row("instances", "i")["state"], log.row("instances", "i")["reason"]) == ("deleted", "idle")


INSTANCE_LIFE = [  # one partition of the instance topic: always folded in this order
    (ev.InstanceRequested, dict(pool="p", provider="local", machine_type="m", cores_mcpu=4000, memory_bytes=1,
                                storage_gib=10, preemptible=True, region="r")),
    (ev.InstanceActivated, dict(pool="p", cores_mcpu=4000, memory_bytes=1, storage_gib=10, region="r",
                                preemptible=True)),
    (ev.InstanceDeactivated, dict(reason="idle")),
    (ev.InstanceDeleted, dict(reason="idle")),
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, len(INSTANCE_LIFE)), min_size=1, max_size=4))
def test_an_instance_row_does_not_depend_on_where_heartbeats_fall(slots: list[int]) -> None:
    """Heartbeats live in their own topic, so a replay may fold them before, between or after the
    instance's other events: the row must come out as if they had come in time order."""
    heartbeats = [(slot, 15_000 + 1_000 * n) for n, slot in enumerate(slots)]

    def row(placed: list[tuple[int, int]]) -> dict[str, Any]:
        log = Log()
        for i in range(len(INSTANCE_LIFE) + 1):
            for _, at in [h for h in placed if h[0] == i]:
                log.add(ev.InstanceHeartbeat, instance_name="i", running_attempt_ids=(), at=at)
            if i < len(INSTANCE_LIFE):
                kind, fields = INSTANCE_LIFE[i]
                log.add(kind, instance_name="i", at=10_000 * (i + 1), **fields)
        return log.row("instances", "i")

    in_time_order = [(sum(10_000 * (i + 1) < at for i in range(len(INSTANCE_LIFE))), at) for _, at in heartbeats]
    assert row(heartbeats) == row(in_time_order)


def test_a_heartbeat_folded_first_makes_a_pending_instance_its_events_complete() -> None:
    log = Log()
    log.add(ev.InstanceHeartbeat, instance_name="i", running_attempt_ids=(), at=50_000)
    assert (log.row("instances", "i")["state"], log.row("instances", "i")["last_heartbeat"]) == ("pending", 50_000)
    log.add(ev.InstanceActivated, instance_name="i", pool="p", cores_mcpu=4000, memory_bytes=1, storage_gib=10,
            region="r", preemptible=True, at=40_000)
    row = log.row("instances", "i")
    assert (row["state"], row["pool"], row["time_activated"], row["last_heartbeat"]) == ("active", "p", 40_000, 50_000)


def fold(events: list[ev.Event]) -> dict[str, Any]:
    model = ReadModel()
    for offset, event in enumerate(events):
        model.apply_all(convert(event, Position("b", 0, offset)))
    return model.rows


SMALL = build_stream(StreamShape(n_batches=2, jobs_per_batch=8, n_instances=2, p_retry=0.3, p_fail=0.2,
                                 p_cancel=0.2), seed=3).events
SMALL_ROWS = fold(SMALL)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, len(SMALL))), min_size=1, max_size=8))
def test_redelivering_any_event_later_changes_no_row(copies: list[tuple[int, int]]) -> None:
    """A copy of event i re-delivered at a later position (a duplicate, or an old event after newer ones)."""
    events = list(SMALL)
    for source, where in copies:
        event = SMALL[source]
        position = max(where, events.index(event) + 1)
        events.insert(position, event)
    assert fold(events) == SMALL_ROWS


def test_a_verdict_that_lost_to_a_retry_of_its_attempt_changes_nothing() -> None:
    """Two verdicts for one attempt: a retry derived before a cancel, a Cancelled one derived after it
    (found by tests/unit/projections/test_cancel_counters.py). The core takes whichever lands first;
    the read model must too, or it counts a completion the core never made."""
    log = Log()
    log.batch(1)
    log.ready(1)
    log.run(1, "a1", outcome="Error", complete=False, cause=INSTANCE_LOST)
    log.ready(1, after="a1")
    log.add(ev.JobCompleted, batch_id=B, job_id=1, state="Cancelled", attempt_id="a1", exit_code=None,
            reason=INSTANCE_LOST, n_attempts=1)
    assert log.row("jobs", B, 1)["state"] == "Ready"
    assert counters(log.row("batches", B)) == (1, 0, 0, 0, 0)


def legacy_sj(log: Log, j: int, attempt: str) -> None:
    """A decision from a log written before verdicts (v1: awaits_verdict false): no verdict follows."""
    log.add(ev.JobAttemptScheduled, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1", scheduler_epoch=1,
            user="u", cores_mcpu=1000, memory_bytes=2 * 1024**3, storage_gib=10, awaits_verdict=False)


def test_a_decision_from_before_verdicts_is_taken_where_it_lands() -> None:
    log = Log()
    log.batch(2)
    log.ready(1)
    legacy_sj(log, 1, "a1")
    job = log.row("jobs", B, 1)
    assert (job["state"], job["current_attempt_id"], job["n_attempts"]) == ("Running", "a1", 1)
    legacy_sj(log, 1, "a2")  # the job is not Ready any more: that release's read model ignored it too
    legacy_sj(log, 2, "b1")  # job 2 is not Ready (never made so): ignored
    assert ("attempts", (B, 1, "a2")) not in {(t, k) for t, rows in log.model.rows.items() for k in rows}
    assert log.row("jobs", B, 2)["state"] == "Pending"


def test_a_decision_from_before_verdicts_that_lost_to_a_cancellation_is_ended_by_the_job_cancelled() -> None:
    """The race the core refused (an SJ after the cancel, before its JobCancelled): the attempt it took
    in place ends as cancelled, the job is Cancelled without it, nothing is billed. Before, the job
    stayed Running for ever."""
    log = Log()
    log.batch(1)
    log.ready(1)
    legacy_sj(log, 1, "a1")
    at = log.t + 5
    log.add(ev.JobCancelled, batch_id=B, job_id=1, reason="batch_cancelled", at=at)
    job, attempt = log.row("jobs", B, 1), log.row("attempts", B, 1, "a1")
    assert (job["state"], job["current_attempt_id"], job["cost"]) == ("Cancelled", None, 0)
    assert (attempt["end_time"], attempt["reason"], attempt["cost"]) == (at, "cancelled", 0)


def test_an_attempt_row_the_chunk_did_not_load_is_ended_by_the_sink() -> None:
    """Live, the JobCancelled may come in a later transaction than the SJ, with only the job's row
    loaded: the fold asks the sink to end the attempt, so live and rebuilt read models agree."""
    whole = Log()
    whole.batch(1)
    whole.ready(1)
    legacy_sj(whole, 1, "a1")
    later = ReadModel()
    for table, rows in whole.model.rows.items():
        for key, row in rows.items():
            if table != "attempts":
                later.load(table, key, dict(row))
    later.apply_all(convert(ev.JobCancelled(event_id="c", occurred_at=5_000, producer="t", batch_id=B, job_id=1,
                                            reason="batch_cancelled"), Position("b", 0, 99)))
    assert later.ended_attempts == [(B, 1, "a1", 5_000)]
    assert later.rows["jobs"][(B, 1)]["state"] == "Cancelled"
