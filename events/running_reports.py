"""Workers' billing updates: which of an instance's attempts run, reported on the batch topic.

Hail's worker posts a billing update to its driver every minute (the attempts it runs and a
timestamp) and the driver bills each of them up to then. squall's worker appends the same fact as
an event, `RunningAttemptsReported`, one per batch it has running attempts of, keyed like the
attempts' own MJS and MJC, so the read model folds it in the batch's order
(projections/readmodel/ledger.py). Only attempts whose MJS was appended are reported; a report the
log loses is superseded by the next, and the MJC bills an attempt start to end in any case.
The worker agent (worker/agent.py) and the simulated workers (services/simworker.py) both send them.
"""

from __future__ import annotations

from collections.abc import Iterable

from events.catalog import AttemptAssigned, RunningAttempt, RunningAttemptsReported
from events.envelope import derived_event_id

DEFAULT_INTERVAL_S = 60.0  # Hail's


def running_reports(instance_name: str, started: Iterable[AttemptAssigned], now_ms: int,
                    producer: str) -> list[RunningAttemptsReported]:
    """One report per batch of the attempts this instance runs (their MJS appended), as of `now_ms`."""
    by_batch: dict[int, list[RunningAttempt]] = {}
    for a in started:
        by_batch.setdefault(a.batch_id, []).append(RunningAttempt(job_id=a.job_id, attempt_id=a.attempt_id))
    return [RunningAttemptsReported(
        event_id=derived_event_id("RunningAttemptsReported", instance_name, batch_id, now_ms), occurred_at=now_ms,
        producer=producer, batch_id=batch_id, instance_name=instance_name, running_at=now_ms,
        attempts=tuple(sorted(attempts, key=lambda r: (r.job_id, r.attempt_id))))
        for batch_id, attempts in sorted(by_batch.items())]
