"""Running attempts accrue cost from their workers' billing updates (RunningAttemptsReported), and are
billed start to end when they end; stale, foreign and re-delivered reports change nothing. No database."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events import catalog as ev
from events.log import Position
from projections.cost import PriceTable, Pricing, add_usage
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.readmodel.tables import STATEFUL
from tests.fakes.streams import StreamShape, build_stream
from tests.unit.projections.test_readmodel_fold import B, Log

PRICING = Pricing(PriceTable())
HELD = PRICING.quantities(1000, 2 * 1024**3, 10, True)  # what Log's jobs hold (1 core, 2 GiB, 10 GiB, spot)


def started(log: Log, j: int, attempt: str, start: int, instance: str = "i1") -> None:
    log.schedule(j, attempt)
    log.add(ev.JobAttemptAccepted, batch_id=B, job_id=j, attempt_id=attempt, instance_name=instance,
            state="Running", scheduler_epoch=1, cores_mcpu=1000, memory_bytes=2 * 1024**3, storage_gib=10)
    log.add(ev.JobAttemptStarted, batch_id=B, job_id=j, attempt_id=attempt, instance_name=instance, started_at=start)


def report(log: Log, at: int, *attempts: tuple[int, str], instance: str = "i1") -> None:
    log.add(ev.RunningAttemptsReported, batch_id=B, instance_name=instance, running_at=at,
            attempts=tuple(ev.RunningAttempt(job_id=j, attempt_id=a) for j, a in attempts))


def ended(log: Log, j: int, attempt: str, start: int, end: int) -> None:
    log.add(ev.JobAttemptCompleted, batch_id=B, job_id=j, attempt_id=attempt, instance_name="i1", outcome="Success",
            exit_code=0, failure_cause=None, out_of_memory=False, started_at=start, ended_at=end, steps=())


def billed(ms: int) -> float:
    return PRICING.price(add_usage({}, HELD, ms))[0]


def costs(log: Log, j: int = 1) -> list[float]:
    """The job's cost and what its groups (2 and its ancestors 1, 0) and the batch show."""
    return [log.row("jobs", B, j)["cost"], *(log.row("job_groups", B, g)["cost"] for g in (2, 1, 0)),
            log.row("batches", B)["cost"]]


def test_a_running_job_accrues_at_each_report_and_is_billed_start_to_end_when_it_ends() -> None:
    log = Log()
    log.batch(1)
    log.ready(1)
    started(log, 1, "a1", start=100_000)
    assert costs(log) == [0.0] * 5
    report(log, 160_000, (1, "a1"))
    attempt, job, batch = log.row("attempts", B, 1, "a1"), log.row("jobs", B, 1), log.row("batches", B)
    assert (attempt["billed_until"], attempt["billed_ms"], attempt["msec_mcpu"]) == (160_000, 60_000, 60_000_000)
    assert job["msec_mcpu"] == batch["msec_mcpu"] == 60_000_000
    assert costs(log) == [billed(60_000)] * 5 and attempt["cost"] == billed(60_000)
    assert batch["usage"] == dict(sorted((r, q * 60_000) for r, q in HELD))
    assert batch["cost_breakdown"] == PRICING.price(batch["usage"])[1]
    assert set(batch["cost_breakdown"]) == {"compute/n1-preemptible/1", "memory/n1-preemptible/1",
                                            "disk/local-ssd/preemptible/1", "service-fee/1"}
    report(log, 220_000, (1, "a1"))
    assert costs(log) == [billed(120_000)] * 5
    ended(log, 1, "a1", 100_000, 190_500)  # ended before the last report reached the log: start to end exactly
    attempt = log.row("attempts", B, 1, "a1")
    assert (attempt["billed_ms"], attempt["msec_mcpu"]) == (90_500, 90_500_000)
    assert costs(log) == [billed(90_500)] * 5
    assert log.row("batches", B)["usage"] == dict(sorted((r, q * 90_500) for r, q in HELD))


def test_reports_that_do_not_advance_a_started_running_attempt_on_its_instance_change_nothing() -> None:
    log = Log()
    log.batch(3)
    for j in (1, 2, 3):
        log.ready(j)
    report(log, 150_000, (1, "a1"))             # before its verdict: no attempt yet
    log.schedule(1, "a1")
    log.accept(1, "a1")
    report(log, 150_000, (1, "a1"))             # accepted, not started
    started(log, 2, "b1", start=100_000, instance="i2")
    report(log, 150_000, (2, "b1"))             # reported by another instance than the one it runs on
    report(log, 150_000, (3, "nope"))           # an attempt the log never accepted
    assert [log.row("jobs", B, j)["cost"] for j in (1, 2, 3)] == [0.0, 0.0, 0.0]
    report(log, 150_000, (2, "b1"), instance="i2")
    report(log, 140_000, (2, "b1"), instance="i2")  # older than what it was billed to
    report(log, 150_000, (2, "b1"), instance="i2")  # re-delivered
    assert log.row("attempts", B, 2, "b1")["billed_ms"] == 50_000
    assert log.row("batches", B)["msec_mcpu"] == 50_000 * 1000
    log.add(ev.JobAttemptStarted, batch_id=B, job_id=2, attempt_id="b1", instance_name="i2", started_at=90_000)
    assert log.row("attempts", B, 2, "b1")["billed_ms"] == 60_000  # Hail keeps the earliest start
    assert log.row("batches", B)["msec_mcpu"] == 60_000 * 1000


def test_one_report_bills_every_attempt_it_names() -> None:
    log = Log()
    log.batch(2)
    for j, a in ((1, "a1"), (2, "b1")):
        log.ready(j)
        started(log, j, a, start=100_000)
    report(log, 130_000, (1, "a1"), (2, "b1"))
    assert [log.row("attempts", B, j, a)["billed_ms"] for j, a in ((1, "a1"), (2, "b1"))] == [30_000, 30_000]
    assert log.row("batches", B)["cost"] == PRICING.price(add_usage({}, HELD, 60_000))[0]


def _fold(events: list[ev.Event], prices: PriceTable) -> dict[str, Any]:
    model = ReadModel(prices)
    for offset, event in enumerate(events):
        model.apply_all(convert(event, Position(event.TOPIC, 0, offset)))
    return {t.name: model.rows[t.name] for t in STATEFUL}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.2, 1.0), at_report=st.booleans(),
       copies=st.lists(st.integers(0, 10**6), max_size=12))
def test_billing_any_prefix_equals_billing_it_with_re_deliveries(seed: int, cut: float, at_report: bool,
                                                                 copies: list[int]) -> None:
    """A prefix of the log (running attempts included) folds to the same rows when any of its events
    is delivered again later, as at-least-once delivery does; and the rows' cost is their usage priced."""
    shape = StreamShape(n_batches=2, jobs_per_batch=10, n_instances=2, p_retry=0.3, report_every_ms=700)
    events = build_stream(shape, seed=seed).events
    end = int(len(events) * cut)
    if at_report:  # end just after a report, so an attempt is running
        end = 1 + max((k for k, e in enumerate(events[:end]) if isinstance(e, ev.RunningAttemptsReported)), default=0)
    events = events[:end]
    once = _fold(events, PriceTable())
    assert _fold(with_redeliveries(events, copies), PriceTable()) == once
    for table in ("batches", "job_groups", "jobs"):
        for row in once[table].values():
            assert (row["cost"], row["cost_breakdown"]) == PRICING.price(row["usage"])
    running = [a for a in once["attempts"].values() if a["start_time"] is not None and a["end_time"] is None]
    assert all(a["billed_ms"] == (0 if a["billed_until"] is None else a["billed_until"] - a["start_time"])
               for a in running)


def with_redeliveries(events: list[ev.Event], copies: list[int]) -> list[ev.Event]:
    """`events` with a copy of some of them each delivered again at some later point."""
    n = len(events)
    later: dict[int, list[ev.Event]] = {}
    for c in copies if n else ():
        source = c % n
        later.setdefault(source + (c // n) % (n - source), []).append(events[source])
    return [e for k, event in enumerate(events) for e in (event, *later.get(k, ()))]


def test_the_stream_has_running_attempts_that_reports_billed() -> None:
    """Guards the property above from only meeting finished attempts."""
    events = build_stream(StreamShape(n_batches=2, jobs_per_batch=10, n_instances=2, report_every_ms=700),
                          seed=3).events
    reports = [k for k, e in enumerate(events) if isinstance(e, ev.RunningAttemptsReported)]
    rows = _fold(events[: reports[len(reports) // 2] + 1], PriceTable())  # cut just after a report
    running = [a for a in rows["attempts"].values() if a["start_time"] is not None and a["end_time"] is None]
    assert running and any(a["billed_ms"] > 0 for a in running)
    late = [e for e in events if isinstance(e, ev.RunningAttemptsReported) and e.producer and any(
        m.attempt_id == r.attempt_id for m in events if isinstance(m, ev.JobAttemptCompleted)
        and m.ended_at < e.running_at for r in e.attempts)]
    assert late  # and some reports come after their attempt's end (a lost worker's, late): ignored
