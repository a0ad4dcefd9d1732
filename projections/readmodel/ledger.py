"""Billing inside the read-model fold: attempts accrue cost while they run, not only when they end.

Each attempt row holds `billed_until` (the latest time its worker reported it running, from
RunningAttemptsReported: Hail's billing update) and `billed_ms`, the milliseconds it has been
billed for. The fold keeps `billed_ms` equal to `projections.cost.accrued_ms(start, end,
billed_until)` by settling the attempt whenever one of those changes: its start (JobAttemptStarted,
or the MJC of an attempt never reported started), a report that it still runs, its end (the MJC:
billed start to end, whatever it accrued before). Settling adds the difference, as usage per
resource (integers), to the attempt's job, every group above the job and the batch, and prices each
from its usage alone.

Why this keeps the read model a pure function of the log, `squall replay --verify` exact: the
reports are facts on the batch topic, in the batch's partition beside the attempt's own MJS and MJC,
so the live projector and a replay meet them in the same order; every row a settlement touches
belongs to that batch, so no other partition's worker writes it. (Billing from heartbeats directly
would need each heartbeat, from its own compacted and differently ordered topic, to write rows of
every batch running on the instance: a race between partitions' workers, and a replay that meets
only the newest heartbeat per instance.)
"""

from __future__ import annotations

from typing import Any

from projections.cost import Pricing, accrued_ms, add_usage
from projections.readmodel.tables import ATTEMPTS, BATCHES, JOB_GROUPS, JOBS

Key = tuple[Any, ...]
Row = dict[str, Any]


class Ledger:
    """Settles held attempts' billing into their rows and the job, groups and batch above them."""

    def __init__(self, pricing: Pricing) -> None:
        self.pricing = pricing

    def settle(self, model: Any, key: Key, attempt: Row, job: Row) -> None:
        """Bring the attempt's billing to what the log says now, and its job, groups and batch with it.

        `model` is the fold (projections/readmodel/fold.py), whose rows and change sets are updated."""
        target = accrued_ms(attempt["start_time"], attempt["end_time"], attempt["billed_until"])
        delta = target - attempt["billed_ms"]
        if delta == 0:
            return
        quantities = self.pricing.quantities(attempt["cores_mcpu"], attempt["memory_bytes"], attempt["storage_gib"],
                                             bool(job["preemptible"]))
        attempt["billed_ms"] = target
        attempt["msec_mcpu"] = target * attempt["cores_mcpu"]
        attempt["cost"] = self.pricing.price(add_usage({}, quantities, target))[0]
        model._touch(ATTEMPTS.name, key)
        used = delta * attempt["cores_mcpu"]
        batch_id = key[0]
        self._bill(job, quantities, delta, used)
        model._touch(JOBS.name, key[:2])
        for ancestor in model._group(batch_id, job["job_group_id"])["ancestor_ids"]:
            self._bill(model._group(batch_id, ancestor), quantities, delta, used)
            model._touch(JOB_GROUPS.name, (batch_id, ancestor))
        self._bill(model._batch(batch_id), quantities, delta, used)
        model._touch(BATCHES.name, (batch_id,))

    def _bill(self, row: Row, quantities: tuple[tuple[str, int], ...], delta_ms: int, used: int) -> None:
        row["usage"] = add_usage(row["usage"], quantities, delta_ms)
        row["msec_mcpu"] += used
        row["cost"], row["cost_breakdown"] = self.pricing.price(row["usage"])
