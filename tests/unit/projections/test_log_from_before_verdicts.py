"""A log written by the release before verdicts (tests/fixtures/legacy, made by its generator against
commit e5acf8e) rebuilds with this release's folds and loses no attempt.

Its decisions are v1 SJ/JobCreating records (no `awaits_verdict`, so they decode as false) and no
JobAttemptAccepted/Refused follows them. Every fold takes such a decision where it lands, as that
release did; the resolver owes no verdict on it. Before, the read model showed no attempt of such a
log (it waited for verdicts that never come), the scheduling state held every placed job for ever
and the resolver, on taking over the partitions, appended verdicts about history.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from events.catalog import (
    Event,
    JobAttemptAccepted,
    JobAttemptRefused,
    JobAttemptScheduled,
    JobCreating,
)
from events.codec import Codec
from events.core.evolve import fold as core_fold
from events.log import Position, Record
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.resolver.core import ResolverCore
from projections.scheduling.model import JobPhase
from projections.scheduling.state import SchedulingState

FIXTURE = Path(__file__).parents[2] / "fixtures" / "legacy" / "e5acf8e.json.gz"
BATCH, INSTANCE = "batch-events", "instance-events"
# priced since by this release's rules (cost per Hail resource, billed from start, end and the
# workers' reports): what an attempt costs is not what this test is about, only that it is there
PRICED = {"cost", "cost_breakdown"}


@pytest.fixture(scope="module")
def legacy() -> dict[str, Any]:
    return json.loads(gzip.decompress(FIXTURE.read_bytes()))


def records(legacy: dict[str, Any], topic: str | None = None) -> list[Record]:
    """The fixture's records (in log order per partition), optionally of one topic."""
    out = [Record(topic=t, partition=p, offset=o, key=base64.b64decode(k) if k is not None else None,
                  value=base64.b64decode(v), timestamp_ms=0) for t, p, o, k, v in legacy["records"]]
    return sorted((r for r in out if topic is None or r.topic == topic), key=lambda r: (r.topic, r.partition, r.offset))


def events(legacy: dict[str, Any], topic: str) -> list[Event]:
    codec = Codec()
    return [codec.decode(r.value) for r in records(legacy, topic)]


def read_model_rows(model: ReadModel) -> dict[str, dict[str, Any]]:
    """Rows keyed by the JSON of their key, as the fixture stores them."""
    return {table: {json.dumps(list(key)): row for key, row in rows.items()} for table, rows in model.rows.items()}


def test_its_decisions_decode_as_written_before_verdicts(legacy: dict[str, Any]) -> None:
    decisions = [e for e in events(legacy, BATCH) if isinstance(e, JobAttemptScheduled | JobCreating)]
    assert decisions and not any(e.awaits_verdict for e in decisions)
    assert not any(isinstance(e, JobAttemptAccepted | JobAttemptRefused) for e in events(legacy, BATCH))


@pytest.mark.parametrize("one_event_per_transaction", [False, True])
def test_the_read_model_rebuilds_to_the_rows_that_release_showed(legacy: dict[str, Any],
                                                                 one_event_per_transaction: bool) -> None:
    """Every attempt that release showed is there, ended or open as it was; every column that release
    had holds the same value (but the prices: PRICED). One event per transaction: each fold starts from the rows the previous
    ones wrote, loaded only as needed, as the live projection does."""
    codec = Codec()
    model = ReadModel()
    for r in records(legacy, BATCH) + records(legacy, INSTANCE):
        if one_event_per_transaction:
            rows = model.rows
            model = ReadModel()
            for table, held in rows.items():
                for key, row in held.items():
                    model.load(table, key, dict(row))
        model.apply_all(convert(codec.decode(r.value), Position(r.topic, r.partition, r.offset)))
    assert model.ended_attempts == []  # every attempt's row was held: nothing left for the sink
    rebuilt = read_model_rows(model)
    for table, rows in legacy["read_model"].items():
        then = {json.dumps(key): row for key, row in rows}
        assert set(rebuilt[table]) == set(then), table
        for key, row in then.items():
            now = rebuilt[table][key]
            assert ({c: now[c] for c in row if c in now and c not in PRICED}
                    == {c: v for c, v in row.items() if c not in PRICED}), (table, key)
    assert len(rebuilt["attempts"]) == 18
    open_attempts = {k for k, row in rebuilt["attempts"].items() if row["end_time"] is None}
    running = {k for k, row in rebuilt["jobs"].items() if row["state"] == "Running"}
    assert len(open_attempts) == len(running) == 1  # the job still running at the cut, on its attempt


def test_the_core_rebuilds_each_batch_with_the_attempts_that_release_showed(legacy: dict[str, Any]) -> None:
    by_batch: dict[int, list[Event]] = defaultdict(list)
    for e in events(legacy, BATCH):
        by_batch[e.batch_id].append(e)
    shown = {tuple(key): row for key, row in legacy["read_model"]["jobs"]}
    attempts_shown: dict[tuple[int, int], set[str]] = defaultdict(set)
    for (batch_id, job_id, attempt_id), _ in legacy["read_model"]["attempts"]:
        attempts_shown[(batch_id, job_id)].add(attempt_id)
    for batch_id, log in by_batch.items():
        state = core_fold(log)
        assert state is not None and state.verdicts_due == {}, batch_id
        for job in state.jobs.values():
            row = shown[(batch_id, job.job_id)]
            assert job.state == row["state"], (batch_id, job.job_id)
            if job.attempt is not None:  # (the core lets go of a finished job's attempt; the row keeps it)
                assert job.attempt.attempt_id == row["current_attempt_id"], (batch_id, job.job_id)
            assert (job.attempt_ids[-1] if job.attempt_ids else None) == row["current_attempt_id"], (batch_id, job.job_id)
            assert set(job.attempt_ids) == attempts_shown[(batch_id, job.job_id)], (batch_id, job.job_id)


def test_the_resolver_owes_no_verdict_on_history(legacy: dict[str, Any]) -> None:
    """Taking over the partitions derives nothing: the cut's running job runs, its Ready ones wait
    for a scheduler. (Before, every decision got a verdict appended years late.)"""
    resolver = ResolverCore("resolver/test")
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for r in records(legacy, BATCH):
        by_partition[r.partition].append(r)
    for partition, recs in by_partition.items():
        assert resolver.rebuild((BATCH, partition), recs) == [], partition


def test_the_scheduling_state_places_what_that_release_placed(legacy: dict[str, Any]) -> None:
    """The running job holds its attempt's capacity on its instance (not held for a verdict), the Ready
    jobs are queued, and every finished job released what it took."""
    state = SchedulingState()
    for e in events(legacy, INSTANCE) + events(legacy, BATCH):
        state.apply(e)
    shown = {tuple(key): row for key, row in legacy["read_model"]["jobs"]}
    running = [key for key, row in shown.items() if row["state"] == "Running"]
    ready = [key for key, row in shown.items() if row["state"] == "Ready"]
    assert len(running) == 1 and len(ready) == 2
    job = state.jobs[running[0]]
    assert (job.phase, job.held, job.attempt_id) == (JobPhase.RUNNING, None, shown[running[0]]["current_attempt_id"])
    assert set(state.attempts) == {job.attempt_id}
    assert state.n_ready() == 2 and all(state.jobs[key].phase is JobPhase.READY for key in ready)
