"""ResolverCore without a broker: records in, derived events and quarantines out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # the lifecycle test builders

from lifecycle_world import Builder  # noqa: E402

from events.catalog import (  # noqa: E402
    AttemptAssigned,
    BatchCompleted,
    Event,
    InstanceHeartbeat,
    JobAttemptAccepted,
    JobBecameReady,
    JobCancelled,
    JobCompleted,
)
from events.codec import Codec  # noqa: E402
from events.log import Record  # noqa: E402
from projections.resolver.core import ResolverCore  # noqa: E402

TOPIC = "t.batch-events"
CODEC = Codec()


class PartitionLog:
    """One partition of the batch topic, in memory."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def append(self, *events: Event) -> list[Record]:
        return self.append_raw(*(CODEC.encode(e) for e in events))

    def append_raw(self, *values: bytes) -> list[Record]:
        new = [Record(topic=TOPIC, partition=0, offset=len(self.records) + i, key=b"7", value=v, timestamp_ms=0)
               for i, v in enumerate(values)]
        self.records += new
        return new

    def events(self) -> list[Event]:
        return [CODEC.decode(r.value) for r in self.records]


def settle(core: ResolverCore, log: PartitionLog, new: list[Record]) -> list[Event]:
    """Feed records to the core, append what it derives, feed those back, until quiet."""
    derived_all: list[Event] = []
    while new:
        result = core.step(new)
        derived_all += result.derived
        new = log.append(*(e for e in result.derived if e.TOPIC == "batch"))
    return derived_all


def owned_core(log: PartitionLog) -> ResolverCore:
    core = ResolverCore("resolver/test", CODEC)
    assert core.rebuild((TOPIC, 0), log.records) == []
    return core


def test_a_dag_runs_to_completion_through_the_core():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    derived = settle(core, log, log.append(b.batch(), *b.dag({1: (), 2: (1,)})))
    assert [(type(e), e.job_id) for e in derived] == [(JobBecameReady, 1)]
    derived = settle(core, log, log.append(b.sj(1, "a1")))
    assert [type(e) for e in derived] == [JobAttemptAccepted, AttemptAssigned]  # the verdict first
    derived = settle(core, log, log.append(b.mjc(1, "a1", "Failed", "nonzero_exit", 2)))
    assert [type(e) for e in derived] == [JobCompleted, JobCancelled, BatchCompleted]
    assert core.batch(7).api_state == "failure"


def test_derived_events_are_not_applied_until_read_back_and_not_derived_twice_meanwhile():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    first = core.step(log.append(b.batch(), *b.dag({1: (), 2: ()}))).derived
    assert len(first) == 2 and core.batch(7).jobs[1].state == "Pending"
    # more records arrive before our JobBecameReady events come back: nothing is derived again
    assert core.step(log.append(b.cancel())).derived[0].SCHEMA_NAME == "BatchCancelled"
    assert core.step(log.append(*first)).derived == []


def test_a_restarted_core_derives_exactly_what_was_missing_with_the_same_ids():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    settle(core, log, log.append(b.batch(), *b.dag({1: (), 2: (), 3: (1, 2)})))
    settle(core, log, log.append(b.sj(1, "a1"), b.sj(2, "a2")))
    # both jobs succeed; the resolver derives two JobCompleted but crashes after appending only one
    result = core.step(log.append(b.mjc(1, "a1"), b.mjc(2, "a2")))
    completed = [e for e in result.derived if isinstance(e, JobCompleted)]
    assert len(completed) == 2
    log.append(completed[0])

    restarted = ResolverCore("resolver/other", CODEC)
    missing = restarted.rebuild((TOPIC, 0), log.records)
    assert [e.event_id for e in missing if e.TOPIC == "batch"] == [completed[1].event_id]
    assert not any(isinstance(e, AttemptAssigned) for e in missing), "ended attempts are not re-assigned"
    log.append(*(e for e in missing if e.TOPIC == "batch"))
    derived = settle(restarted, log, log.records[-1:])
    assert [(type(e), getattr(e, "job_id", None)) for e in derived] == [(JobBecameReady, 3)]


def test_assignments_of_unstarted_attempts_are_re_sent_after_a_restart_with_the_same_id():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    settle(core, log, log.append(b.batch(), *b.dag({1: ()})))
    [accepted, assigned] = settle(core, log, log.append(b.sj(1, "a1")))
    assert isinstance(accepted, JobAttemptAccepted) and isinstance(assigned, AttemptAssigned)
    restarted = ResolverCore("resolver/other", CODEC)
    assert [e.event_id for e in restarted.rebuild((TOPIC, 0), log.records)] == [assigned.event_id]


def test_poison_records_are_quarantined_and_processing_goes_on():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    garbage = log.append_raw(b"\x00not avro")
    stranger = log.append(b.sj(1, "a1"))  # a batch nobody created
    wrong_topic = log.append(InstanceHeartbeat(event_id="hb", occurred_at=1, producer="w", instance_name="i",
                                               running_attempt_ids=()))
    rest = log.append(b.batch(), *b.dag({1: ()}))
    result = core.step(garbage + stranger + wrong_topic + rest)
    reasons = [(q.record.offset, q.reason) for q in result.quarantined]
    assert [offset for offset, _ in reasons] == [0, 1, 2]
    assert "cannot decode" in reasons[0][1] and "never created" in reasons[1][1]
    assert "does not belong on the batch topic" in reasons[2][1]
    assert [type(e) for e in result.derived] == [JobBecameReady]
    assert result.offsets == {(TOPIC, 0): len(log.records)}


def test_records_already_folded_by_the_rebuild_are_skipped_but_undecodable_ones_still_quarantined():
    b, log = Builder(), PartitionLog()
    log.append(b.batch(), *b.dag({1: ()}))
    log.append_raw(b"\xc3\x01garbage!")
    core = ResolverCore("resolver/test", CODEC)
    [ready] = core.rebuild((TOPIC, 0), log.records)
    assert isinstance(ready, JobBecameReady)
    # the group consumer re-delivers from the last committed offset (here: the start)
    result = core.step(log.records)
    assert result.derived == [] and [q.record.offset for q in result.quarantined] == [len(log.records) - 1]


def test_records_of_a_released_partition_are_ignored():
    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    core.release((TOPIC, 0))
    result = core.step(log.append(b.batch(), *b.dag({1: ()})))
    assert result.derived == [] and result.offsets == {}


def test_a_bug_in_the_fold_crashes_the_resolver_while_an_unprojectable_event_is_quarantined(monkeypatch):
    """Only UnprojectableEvent means "this event cannot be applied"; a KeyError is a bug in the code,
    and quarantining the event it met would hide the bug and lose the event's effect."""
    import projections.resolver.core as resolver_core
    from events.errors import UnprojectableEvent

    b, log = Builder(), PartitionLog()
    core = owned_core(log)
    settle(core, log, log.append(b.batch(), *b.dag({1: ()})))
    real_evolve = resolver_core.evolve

    def evolve_with(error: Exception):  # type: ignore[no-untyped-def]
        def evolve(state, event):  # type: ignore[no-untyped-def]
            if event.SCHEMA_NAME == "JobAttemptScheduled":
                raise error
            return real_evolve(state, event)
        return evolve

    monkeypatch.setattr(resolver_core, "evolve", evolve_with(UnprojectableEvent("says something impossible")))
    result = core.step(log.append(b.sj(1, "a1")))
    assert [q.reason for q in result.quarantined] == ["cannot apply: says something impossible"]
    monkeypatch.setattr(resolver_core, "evolve", evolve_with(KeyError("a bug")))
    with pytest.raises(KeyError):
        core.step(log.append(b.sj(1, "a2")))
