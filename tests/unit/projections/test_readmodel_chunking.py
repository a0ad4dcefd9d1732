"""The read model does not depend on how the log is cut into transactions (property test).

Live, the projection folds whatever each poll returns; `squall replay` folds the same log in other
chunks. Each chunk starts from a fresh `ReadModel` holding only the rows the sink loads for it
(`needs.keys_to_load`: the columns `tables.Table.loaded`), and only new and changed rows are written
back (the mutable columns of a changed row), exactly as projections/readmodel/sink.py does against
PostgreSQL. The logs are the lifecycle core's own random runs (lifecycle_runs.Run: cancel races,
re-deliveries, deposed schedulers, Creating jobs), not hand-made streams: every way of cutting one
must give the rows one whole fold gives.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))  # the lifecycle runs

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from lifecycle_runs import ACTIONS, Run  # noqa: E402
from lifecycle_world import Builder, World  # noqa: E402

from events.catalog import Event  # noqa: E402
from events.log import Position  # noqa: E402
from projections.readmodel.convert import convert  # noqa: E402
from projections.readmodel.fold import ReadModel  # noqa: E402
from projections.readmodel.needs import GROUPS_OF_BATCH, keys_to_load  # noqa: E402
from projections.readmodel.tables import ATTEMPTS, JOB_GROUPS, JOBS, STATEFUL  # noqa: E402

_BY_NAME = {t.name: t for t in STATEFUL}
Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


class TableStore:
    """The read-model tables in memory, loaded and written the way the Postgres sink does it."""

    def __init__(self) -> None:
        self.rows: Rows = {t.name: {} for t in STATEFUL}

    def apply_chunk(self, events: list[tuple[int, Event]]) -> None:
        op_list = [op for offset, e in events for op in convert(e, Position("batch", 0, offset))]
        model = ReadModel()
        wanted = keys_to_load(op_list)
        for batch_key in wanted.pop(GROUPS_OF_BATCH):
            for key, row in self.rows[JOB_GROUPS.name].items():
                if key[0] == batch_key[0]:
                    model.load(JOB_GROUPS.name, key, {c: row[c] for c in JOB_GROUPS.loaded})
        for name, keys in wanted.items():
            table = _BY_NAME[name]
            for key in keys:
                row = self.rows[name].get(key)
                if row is not None:
                    model.load(name, key, {c: row[c] for c in table.loaded})
        model.apply_all(op_list)
        for table in STATEFUL:
            stored = self.rows[table.name]
            for key in model.new[table.name]:
                stored[key] = {c: model.rows[table.name][key][c] for c in table.columns}
            for key in model.dirty[table.name]:
                stored[key].update({c: model.rows[table.name][key][c] for c in table.mutable})
        for batch_id, update_id in model.committed_updates:  # the sink's UPDATE of jobs it did not hold
            for (b, _), job in self.rows[JOBS.name].items():
                if b == batch_id and job["update_id"] == update_id:
                    job["committed"] = True
        for batch_id, job_id, attempt_id, at in model.ended_attempts:  # and of attempts it did not hold
            attempt = self.rows[ATTEMPTS.name].get((batch_id, job_id, attempt_id))
            if attempt is not None and attempt["end_time"] is None:
                attempt.update(end_time=at, reason="cancelled")


def fold_in_chunks(log: list[Event], cuts: set[int]) -> Rows:
    store, chunk = TableStore(), []
    for offset, event in enumerate(log):
        chunk.append((offset, event))
        if offset + 1 in cuts:
            store.apply_chunk(chunk)
            chunk = []
    if chunk:
        store.apply_chunk(chunk)
    return store.rows


def whole_fold(log: list[Event]) -> Rows:
    model = ReadModel()
    for offset, event in enumerate(log):
        model.apply_all(convert(event, Position("batch", 0, offset)))
    return model.rows


def _random_log(data: st.DataObject, verdicts: bool = True) -> list[Event]:
    run = Run(data, verdicts)
    run.setup()
    for action in run.draw(st.lists(st.sampled_from(ACTIONS), min_size=10, max_size=60)):
        run.step(action)
    if run.draw(st.booleans()):
        run.drive_to_quiescence()
    return run.w.log


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_chunking_of_a_core_log_gives_the_rows_of_one_whole_fold(data: st.DataObject) -> None:
    log = _random_log(data)
    whole = whole_fold(log)
    assert fold_in_chunks(log, set()) == whole  # the store itself loses nothing
    assert fold_in_chunks(log, set(range(1, len(log)))) == whole, "one event per transaction"
    cuts = data.draw(st.sets(st.integers(1, max(1, len(log) - 1))), label="cuts")
    assert fold_in_chunks(log, cuts) == whole, f"cut at {sorted(cuts)}"


def test_an_sj_that_raced_the_cancellation_looks_the_same_however_the_log_is_cut() -> None:
    """The issue's race: the SJ lands after BatchCancelled, before the derived JobCancelled. Live, the
    read model once kept that attempt open when the JobCancelled came in a later poll (the attempt's
    row was not loaded), while a replay in one chunk ended it."""
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: ()}))
    w.settle()
    w.append(b.cancel())
    w.settle()  # BatchCancelled and JobCancelled derived; the SJ lands between them below
    log = list(w.log)
    cancelled_at = next(i for i, e in enumerate(log) if e.SCHEMA_NAME == "JobCancelled")
    raced = World()
    raced.append(*log[:cancelled_at], b.sj(1, "a1"), *log[cancelled_at:])
    raced.settle()  # the SJ's refusal
    kinds = [e.SCHEMA_NAME for e in raced.log[cancelled_at:]]
    assert kinds[:2] == ["JobAttemptScheduled", "JobCancelled"] and kinds[-1] == "JobAttemptRefused"
    whole = whole_fold(raced.log)
    assert whole["attempts"] == {} and whole["jobs"][(7, 1)]["current_attempt_id"] is None
    for cut in range(1, len(raced.log)):
        assert fold_in_chunks(raced.log, {cut}) == whole, cut


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_chunking_of_a_log_written_before_verdicts_gives_the_rows_of_one_whole_fold(data: st.DataObject) -> None:
    """Decisions from before verdicts are taken where they land (and one that raced a cancellation is
    ended by the JobCancelled, its row loaded or not): still independent of the cuts."""
    log = _random_log(data, verdicts=False)
    whole = whole_fold(log)
    assert fold_in_chunks(log, set(range(1, len(log)))) == whole, "one event per transaction"
    cuts = data.draw(st.sets(st.integers(1, max(1, len(log) - 1))), label="cuts")
    assert fold_in_chunks(log, cuts) == whole, f"cut at {sorted(cuts)}"


def test_an_sj_from_before_verdicts_that_raced_the_cancellation_ends_however_the_log_is_cut() -> None:
    """The same race in a log written before verdicts: that release's read model took the SJ (the job
    was Ready), and the JobCancelled ends that attempt as cancelled. Before this, live folds whose
    chunk did not hold the attempt's row kept it open, and the job stayed Running."""
    b, w = Builder(), World()
    w.append(b.batch(), *b.dag({1: ()}))
    w.settle()
    w.append(b.cancel())
    w.settle()
    log = list(w.log)
    cancelled_at = next(i for i, e in enumerate(log) if e.SCHEMA_NAME == "JobCancelled")
    raced = [*log[:cancelled_at], b.sj(1, "a1", awaits_verdict=False), *log[cancelled_at:]]
    whole = whole_fold(raced)
    job, attempt = whole["jobs"][(7, 1)], whole["attempts"][(7, 1, "a1")]
    assert (job["state"], job["current_attempt_id"]) == ("Cancelled", None)
    assert (attempt["reason"], attempt["end_time"]) == ("cancelled", raced[cancelled_at + 1].occurred_at)
    for cut in range(1, len(raced)):
        assert fold_in_chunks(raced, {cut}) == whole, cut
