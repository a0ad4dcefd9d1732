"""convert(event, position) -> ops, for every event type the read models show. No broker, no database."""

from __future__ import annotations

import pytest

from events import catalog as ev
from events.failures import INSTANCE_LOST, OUT_OF_MEMORY, SHORT_ERRORS
from events.log import Position
from projections.readmodel import ops
from projections.readmodel.convert import ConvertError, convert
from tests.fakes.streams import job_spec, spec_json

POS = Position("squall.batch-events", 3, 42)
ENV = {"event_id": "e1", "occurred_at": 1_000, "producer": "test", "causation_id": "c0"}


def only_op(event: ev.Event) -> ops.Op:
    result = convert(event, POS)
    state_ops = [o for o in result if not isinstance(o, ops.RecordAudit)]
    assert len(state_ops) == 1, result
    return state_ops[0]


def test_every_batch_event_gets_an_audit_entry_with_its_position() -> None:
    event = ev.JobAttemptStarted(**ENV, batch_id=7, job_id=3, attempt_id="a1", instance_name="i", started_at=900)
    audit = convert(event, POS)[-1]
    assert audit == ops.RecordAudit(batch_id=7, job_id=3, topic=POS.topic, partition=3, offset=42,
                                    event_type="JobAttemptStarted", event_id="e1", occurred_at=1_000,
                                    causation_id="c0", producer="test", attempt_id="a1")


def test_batch_level_events_audit_without_a_job() -> None:
    event = ev.BatchCancelled(**ENV, batch_id=7)
    result = convert(event, POS)
    assert result[0] == ops.CancelJobGroup(batch_id=7, job_group_id=0)
    assert isinstance(result[1], ops.RecordAudit) and result[1].job_id is None


@pytest.mark.parametrize("event, expected", [
    (ev.BatchCreated(**ENV, batch_id=1, user="u", billing_project="bp", token="t", attributes={"k": "v"},
                     callback="http://cb", cancel_after_n_failures=2),
     ops.CreateBatch(batch_id=1, user="u", billing_project="bp", token="t", attributes={"k": "v"},
                     callback="http://cb", cancel_after_n_failures=2, at=1_000)),
    (ev.BatchUpdateCreated(**ENV, batch_id=1, update_id=2, token="ut", n_jobs=5, n_job_groups=1,
                           start_job_id=11, start_job_group_id=3),
     ops.CreateUpdate(batch_id=1, update_id=2, token="ut", n_jobs=5, n_job_groups=1, start_job_id=11,
                      start_job_group_id=3, at=1_000)),
    (ev.BatchUpdateCommitted(**ENV, batch_id=1, update_id=2, n_jobs=5, n_job_groups=1, start_job_id=11,
                             start_job_group_id=3),
     ops.CommitUpdate(batch_id=1, update_id=2, n_jobs=5, at=1_000)),
    (ev.JobGroupCreated(**ENV, batch_id=1, update_id=1, job_group_id=2, parent_job_group_id=1, attributes={}),
     ops.CreateJobGroup(batch_id=1, job_group_id=2, parent_job_group_id=1, update_id=1, attributes={},
                        callback=None, cancel_after_n_failures=None, at=1_000)),
    (ev.JobGroupCancelRequested(**ENV, batch_id=1, job_group_id=2, user="u"),
     ops.CancelJobGroup(batch_id=1, job_group_id=2)),
    (ev.JobGroupCancelled(**ENV, batch_id=1, job_group_id=2, reason="too many failures"),
     ops.CancelJobGroup(batch_id=1, job_group_id=2)),
    (ev.BatchCancelRequested(**ENV, batch_id=1, user="u", reason="user"),
     ops.CancelJobGroup(batch_id=1, job_group_id=0)),
    (ev.BatchDeleted(**ENV, batch_id=1, user="u"), ops.DeleteBatch(batch_id=1)),
    (ev.BatchCompleted(**ENV, batch_id=1, n_jobs=4, n_succeeded=3, n_failed=1, n_cancelled=0),
     ops.CompleteBatch(batch_id=1, n_jobs=4, at=1_000)),
    (ev.JobBecameReady(**ENV, batch_id=1, job_id=2, after_attempt_id="a1", not_before=5_000, reason="retry"),
     ops.MarkJobReady(batch_id=1, job_id=2, after_attempt_id="a1", not_before=5_000, at=1_000)),
    (ev.JobAttemptAccepted(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", state="Creating",
                           scheduler_epoch=1, cores_mcpu=500, memory_bytes=10, storage_gib=1),
     ops.ScheduleAttempt(batch_id=1, job_id=2, attempt_id="a1", instance_name="i", cores_mcpu=500,
                         memory_bytes=10, storage_gib=1, creating=True, at=1_000)),
    (ev.JobAttemptAccepted(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", state="Running",
                           scheduler_epoch=1, cores_mcpu=500, memory_bytes=10, storage_gib=1),
     ops.ScheduleAttempt(batch_id=1, job_id=2, attempt_id="a1", instance_name="i", cores_mcpu=500,
                         memory_bytes=10, storage_gib=1, creating=False, at=1_000)),
    (ev.JobAttemptStarted(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", started_at=900),
     ops.StartAttempt(batch_id=1, job_id=2, attempt_id="a1", instance_name="i", started_at=900)),
    (ev.JobCompleted(**ENV, batch_id=1, job_id=2, state="Failed", attempt_id="a1", exit_code=3, reason="nonzero_exit",
                     n_attempts=1),
     ops.CompleteJob(batch_id=1, job_id=2, state="Failed", attempt_id="a1", exit_code=3, reason="nonzero_exit",
                     n_attempts=1, at=1_000)),
    (ev.JobCancelled(**ENV, batch_id=1, job_id=2, reason="parent failed"),
     ops.CompleteJob(batch_id=1, job_id=2, state="Cancelled", attempt_id=None, exit_code=None,
                     reason="parent failed", n_attempts=None, at=1_000)),
])
def test_batch_events(event: ev.Event, expected: ops.Op) -> None:
    assert only_op(event) == expected


@pytest.mark.parametrize("decision", [
    ev.JobCreating(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", scheduler_epoch=1, user="u",
                   awaits_verdict=True),
    ev.JobAttemptScheduled(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", scheduler_epoch=1,
                           user="u", cores_mcpu=500, memory_bytes=10, storage_gib=1, awaits_verdict=True),
    ev.JobAttemptRefused(**ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="i", state="Running",
                         scheduler_epoch=1, reason="cancelled"),
])
def test_decisions_and_refusals_are_only_audited(decision: ev.Event) -> None:
    """Whether a decision counts is the resolver's verdict (JobAttemptAccepted), never the read model's."""
    [audit] = convert(decision, POS)
    assert isinstance(audit, ops.RecordAudit) and audit.attempt_id == "a1"


def test_job_created_parses_the_spec_and_takes_resources_and_name() -> None:
    spec = job_spec(cores_mcpu=250, memory_bytes=123, storage_gib=10, preemptible=False)
    op = only_op(ev.JobCreated(**ENV, batch_id=1, job_id=2, update_id=1, job_group_id=0, parent_ids=(1,),
                               always_run=True, n_max_attempts=3, user="u", billing_project="bp",
                               attributes={"name": "align"}, spec=spec, spec_json=spec_json(spec)))
    assert isinstance(op, ops.CreateJob)
    assert (op.name, op.cores_mcpu, op.memory_bytes, op.storage_gib, op.preemptible, op.worker_type) == (
        "align", 250, 123, 10, False, "standard")
    assert op.spec["process"]["image"] == "ubuntu:24.04" and op.parent_ids == (1,) and op.always_run


def test_job_created_with_a_broken_spec_json_is_a_convert_error() -> None:
    spec = job_spec()
    event = ev.JobCreated(**ENV, batch_id=1, job_id=2, update_id=1, job_group_id=0, parent_ids=(), always_run=False,
                          n_max_attempts=3, user="u", billing_project="bp", attributes={}, spec=spec,
                          spec_json="{not json")
    with pytest.raises(ConvertError, match="spec_json"):
        convert(event, POS)


def test_attempt_completed_becomes_a_hail_shaped_worker_status() -> None:
    event = ev.JobAttemptCompleted(
        **ENV, batch_id=1, job_id=2, attempt_id="a1", instance_name="inst", outcome="Failed", exit_code=137,
        failure_cause=OUT_OF_MEMORY, error="OOM", out_of_memory=True, started_at=100, ended_at=400,
        steps=(ev.StepTiming(name="main", state="failed", started_at=150, ended_at=390, exit_code=137,
                             out_of_memory=True),))
    op = only_op(event)
    assert isinstance(op, ops.EndAttempt)
    assert (op.outcome, op.exit_code, op.failure_cause, op.started_at, op.ended_at) == (
        "Failed", 137, OUT_OF_MEMORY, 100, 400)
    main = op.status["container_statuses"]["main"]
    assert main["timing"]["running"] == {"start_time": 150, "finish_time": 390, "duration": 240}
    assert main["container_status"]["exit_code"] == 137 and main["container_status"]["out_of_memory"]
    assert main["short_error"] == "out of memory"
    assert op.status["state"] == "failed" and op.status["short_error"] == SHORT_ERRORS[OUT_OF_MEMORY]
    assert op.status["error"] == "OOM" and op.status["worker"] == "inst"


def test_instance_events_move_state_and_fill_columns_without_audit() -> None:
    requested = convert(ev.InstanceRequested(**ENV, instance_name="i1", pool="standard", provider="gce",
                                             machine_type="n1-standard-4", cores_mcpu=4000, memory_bytes=15,
                                             storage_gib=100, preemptible=True, region="us-central1"), POS)
    assert len(requested) == 1 and isinstance(requested[0], ops.UpsertInstance)
    assert requested[0].state == "pending" and ("time_requested", 1_000) in requested[0].values
    heartbeat = only_op(ev.InstanceHeartbeat(**ENV, instance_name="i1", running_attempt_ids=("a",)))
    assert heartbeat == ops.UpsertInstance(name="i1", state=None, values=(), heartbeat_at=1_000)
    lost = only_op(ev.InstanceDeactivated(**ENV, instance_name="i1", reason=INSTANCE_LOST))
    assert isinstance(lost, ops.UpsertInstance) and lost.state == "inactive"
    deleted = only_op(ev.InstanceDeleted(**ENV, instance_name="i1", reason="idle"))
    assert isinstance(deleted, ops.UpsertInstance) and deleted.state == "deleted"
    activated = only_op(ev.InstanceActivated(**ENV, instance_name="i1", pool="standard", cores_mcpu=4000,
                                             memory_bytes=15, storage_gib=100, region="r", preemptible=True))
    assert isinstance(activated, ops.UpsertInstance) and activated.state == "active"
    created = only_op(ev.InstanceCreated(**ENV, instance_name="i1", provider="gce", provider_id="123"))
    assert isinstance(created, ops.UpsertInstance) and ("provider_id", "123") in created.values


def test_events_the_read_models_do_not_show_convert_to_nothing() -> None:
    assert convert(ev.SchedulerLeaderElected(**ENV, scheduler_id="s", epoch=2), POS) == []
    kill = ev.AttemptKillRequested(**ENV, instance_name="i", batch_id=1, job_id=2, attempt_id="a", reason="cancel")
    assert convert(kill, POS) == []


def test_ops_built_positionally_carry_each_field_by_name() -> None:
    """convert builds its hottest ops positionally: every value here is distinct, so a field out of
    order shows up as a wrong name."""
    env = {"event_id": "ev-id", "occurred_at": 1_001, "producer": "prod", "causation_id": "cause"}
    pos = Position("topic-x", 5, 77)
    spec = job_spec(cores_mcpu=251, memory_bytes=1_002, storage_gib=13, preemptible=True)
    created = convert(ev.JobCreated(**env, batch_id=31, job_id=32, update_id=33, job_group_id=34,
                                    parent_ids=(35,), always_run=True, n_max_attempts=36, user="usr",
                                    billing_project="bp", attributes={"name": "nm"}, spec=spec,
                                    spec_json=spec_json(spec)), pos)
    assert created[0] == ops.CreateJob(
        batch_id=31, job_id=32, job_group_id=34, update_id=33, name="nm", user="usr", billing_project="bp",
        always_run=True, n_max_attempts=36, parent_ids=(35,), attributes={"name": "nm"},
        spec=created[0].spec, cores_mcpu=251, memory_bytes=1_002, storage_gib=13, preemptible=True,
        worker_type=spec.resources.worker_type, at=1_001)
    assert created[1] == ops.RecordAudit(batch_id=31, job_id=32, topic="topic-x", partition=5, offset=77,
                                         event_type="JobCreated", event_id="ev-id", occurred_at=1_001,
                                         causation_id="cause", producer="prod", attempt_id=None)
    ready = convert(ev.JobBecameReady(**env, batch_id=41, job_id=42, after_attempt_id="aa", not_before=43,
                                      reason="retry"), pos)
    assert ready[0] == ops.MarkJobReady(batch_id=41, job_id=42, after_attempt_id="aa", not_before=43, at=1_001)
    assert ready[1].attempt_id == "aa" and ready[1].job_id == 42  # type: ignore[union-attr]
    scheduled = convert(ev.JobAttemptAccepted(**env, batch_id=51, job_id=52, attempt_id="at", instance_name="in",
                                              state="Running", scheduler_epoch=1, cores_mcpu=53, memory_bytes=54,
                                              storage_gib=55), pos)[0]
    assert scheduled == ops.ScheduleAttempt(batch_id=51, job_id=52, attempt_id="at", instance_name="in",
                                            cores_mcpu=53, memory_bytes=54, storage_gib=55, creating=False, at=1_001)
    creating = convert(ev.JobAttemptAccepted(**env, batch_id=51, job_id=52, attempt_id="at", instance_name="in",
                                             state="Creating", scheduler_epoch=1, cores_mcpu=53, memory_bytes=54,
                                             storage_gib=55), pos)[0]
    assert creating == ops.ScheduleAttempt(batch_id=51, job_id=52, attempt_id="at", instance_name="in",
                                           cores_mcpu=53, memory_bytes=54, storage_gib=55, creating=True,
                                           at=1_001)
    started = convert(ev.JobAttemptStarted(**env, batch_id=61, job_id=62, attempt_id="as", instance_name="is",
                                           started_at=63), pos)[0]
    assert started == ops.StartAttempt(batch_id=61, job_id=62, attempt_id="as", instance_name="is", started_at=63)
    ended_event = ev.JobAttemptCompleted(**env, batch_id=71, job_id=72, attempt_id="ae", instance_name="ie",
                                         outcome="Failed", exit_code=73, failure_cause=OUT_OF_MEMORY, error="err",
                                         out_of_memory=True, started_at=74, ended_at=75, steps=())
    ended = convert(ended_event, pos)[0]
    assert ended == ops.EndAttempt(batch_id=71, job_id=72, attempt_id="ae", instance_name="ie", outcome="Failed",
                                   exit_code=73, failure_cause=OUT_OF_MEMORY, error="err", started_at=74,
                                   ended_at=75, status=ended.status)  # type: ignore[union-attr]
    completed = convert(ev.JobCompleted(**env, batch_id=81, job_id=82, state="Error", attempt_id="ac", exit_code=83,
                                        reason="rsn", n_attempts=84), pos)[0]
    assert completed == ops.CompleteJob(batch_id=81, job_id=82, state="Error", attempt_id="ac", exit_code=83,
                                        reason="rsn", n_attempts=84, at=1_001)
