"""The resolver's batch snapshots keep every fact of a batch, and share specs as the fold does."""

from __future__ import annotations

import dataclasses

import pytest

from events.catalog import EnvVar, FileCopy, JobSpec, Resources, RetryPolicy
from events.core.lifecycle import BatchState, Job, evolve, react
from projections.resolver import batch_codec
from projections.resolver.batch_codec import batch_to_plain, decode_batch, encode_batch
from projections.snapshots.sealed import SnapshotOutdated, seal
from tests.unit.core.lifecycle_world import SPEC, Builder


def test_the_codec_names_every_slot_but_the_bookkeeping() -> None:
    stored_apart_of_a_job = {"spec", "attempt", "completion", "retry_policy", "overrides"}
    assert set(batch_codec.JOB_FIELDS) | stored_apart_of_a_job == set(Job.__slots__)
    stored_apart = {"updates", "groups", "jobs", "rejected_attempts", "verdicts_due", "specs"}
    assert set(batch_codec.BATCH_FIELDS) | stored_apart | set(batch_codec.BATCH_NOT_STORED) == set(BatchState.__slots__)
    assert tuple(f.name for f in dataclasses.fields(JobSpec)) == batch_codec.SPEC_FIELDS
    assert tuple(f.name for f in dataclasses.fields(Resources)) == batch_codec.RESOURCES_FIELDS
    assert tuple(f.name for f in dataclasses.fields(RetryPolicy)) == batch_codec.POLICY_FIELDS
    assert [f.name for f in dataclasses.fields(EnvVar)] == ["name", "value"]
    assert [f.name for f in dataclasses.fields(FileCopy)] == ["src", "dst"]


POLICY = RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=2**33, max_preemptions=3, retry_exit_codes=(3,))


def a_busy_batch() -> BatchState:
    b = Builder()
    rich = dataclasses.replace(SPEC, env=(EnvVar(name="A", value="1"),), timeout_s=3.5, regions=("us",), port=80,
                               input_files=(FileCopy(src="gs://b/x", dst="/io/x"),),
                               output_files=(FileCopy(src="/io/y", dst="gs://b/y"),))
    events = [b.batch(2), b.update(1, 4, 1, n_job_groups=1), b.group(1, cancel_after_n_failures=3),
              b.job(1), b.job(2, (1,)), b.job(3, group=1), b.job(4, (3,), always_run=True),
              b.commit(1, 4, 1), b.sj(3, "old", epoch=1), b.sj(1, "a1", epoch=2), b.sj(3, "x", epoch=1),
              b.mjs(1, "a1"), b.mjc(1, "a1", "Error", "instance_lost", None)]
    events[5] = dataclasses.replace(events[5], spec=rich)
    state = None
    for e in events:
        state = evolve(state, e)
    assert state is not None
    for e in react(state, "p"):  # a retry made ready, verdicts judged
        if e.TOPIC == "batch":
            state = evolve(state, e)
    state.clear_dirty()
    return state


def test_a_batch_round_trips_with_every_fact() -> None:
    state = a_busy_batch()
    assert state.verdicts_due or state.rejected_attempts  # the bookkeeping of decisions is kept too
    again = decode_batch(encode_batch(state))
    assert batch_to_plain(again) == batch_to_plain(state)
    assert again.snapshot() == state.snapshot()
    assert react(again, "p", everything=True) == react(state, "p", everything=True)


def test_restored_jobs_share_their_specs_as_the_fold_does() -> None:
    b = Builder()
    state = None
    for e in [b.batch(), *b.dag({j: () for j in range(1, 201)})]:
        state = evolve(state, e)
    assert state is not None
    again = decode_batch(encode_batch(state))
    specs = {id(j.spec) for j in again.jobs.values()}
    assert len(specs) == 1, "equal specs become one object"
    assert again.jobs[1].spec == SPEC
    assert again.specs.share(SPEC).resources is again.jobs[1].spec.resources, "shared through the batch's interner"


def test_a_snapshot_of_another_version_is_outdated() -> None:
    other = seal(bytes(16), batch_to_plain(a_busy_batch()))
    with pytest.raises(SnapshotOutdated):
        decode_batch(other)


def fold_with_reactions(events: list) -> BatchState:  # type: ignore[type-arg]
    state = None
    for e in events:
        state = evolve(state, e)
        assert state is not None
        derived = [d for d in react(state, "p") if d.TOPIC == "batch"]
        while derived:
            for d in derived:
                state = evolve(state, d)
            derived = [d for d in react(state, "p") if d.TOPIC == "batch"]
    assert state is not None
    return state


def test_retry_policies_and_what_retries_changed_round_trip() -> None:
    b = Builder()
    state = fold_with_reactions([b.batch(), b.update(1, 2, 1), b.job(1, retry_policy=POLICY),
                                 b.job(2, retry_policy=POLICY), b.commit(1, 2, 1), b.sj(1, "a1"), b.mjs(1, "a1"),
                                 b.mjc(1, "a1", "Error", "preempted", None)])
    overrides = state.jobs[1].overrides
    assert overrides is not None and overrides.n_preemptions == 1, "the preemption was counted"
    again = decode_batch(encode_batch(state))
    assert again.snapshot() == state.snapshot()
    assert again.jobs[1].retry_policy is again.jobs[2].retry_policy == POLICY, "one policy, shared again"
    assert again.jobs[1].overrides is not None and again.jobs[1].overrides.snapshot() == overrides.snapshot()
    assert react(again, "p", everything=True) == react(state, "p", everything=True)
