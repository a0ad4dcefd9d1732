"""PoolScalingDecided: the autoscaler's decision for a pool, with its numbers, as an event.

Appended when the autoscaler acts on a pool (requests, deletions) or when what it sees changes, not
every loop: an idle fleet writes nothing. The read model keeps them (`pool_decisions`) for the UI's
pools page, `squall audit --pool`, and the "why" of a waiting job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.catalog import PoolInstanceChoice, PoolScalingDecided, PoolWindowUser, PoolZoneWeight
from events.core.autoscale import PoolConfig, PoolVerdict
from events.core.lookahead import Lookahead
from events.core.zones import ZoneWeight
from events.envelope import derived_event_id


def decision_event(pool: PoolConfig, verdict: PoolVerdict, window: Lookahead, zones: Sequence[ZoneWeight],
                   instances: Sequence[PoolInstanceChoice], paused_until: int | None, now: int,
                   producer: str, loop: int) -> PoolScalingDecided:
    """`loop`: the autoscaler's loop count, so two decisions in one millisecond have distinct ids."""
    return PoolScalingDecided(
        event_id=derived_event_id("PoolScalingDecided", producer, pool.name, now, loop), occurred_at=now,
        producer=producer,
        pool=pool.name, requested=verdict.requested, standing_requested=verdict.standing_requested,
        deleted=verdict.deleted, limited_by=verdict.limited_by, paused_until=paused_until,
        ready_mcpu=window.ready_mcpu, demand_mcpu=window.demand_mcpu, demand_truncated=window.truncated,
        future_mcpu=window.future_mcpu, window_ms=window.window_ms, free_mcpu=verdict.free_mcpu,
        pending_mcpu=verdict.pending_mcpu, live=verdict.live, pending=verdict.pending, inactive=verdict.inactive,
        min_instances=pool.min_instances, max_live_instances=pool.live_limit, max_instances=pool.max_instances,
        max_new_per_loop=pool.max_new_per_loop, worker_cores=pool.worker_cores,
        standing_worker_cores=pool.standing_cores,
        users=tuple(PoolWindowUser(user=u.user, share_mcpu=u.share_mcpu, jobs_per_pass=u.jobs_per_pass,
                                   window_jobs=u.window_jobs, n_jobs=u.n_jobs, demand_mcpu=u.demand_mcpu)
                    for u in window.users),
        zones=tuple(PoolZoneWeight(zone=z.zone, successes=z.successes, attempts=z.attempts, weight=z.weight)
                    for z in zones),
        instances=tuple(instances))


class DecisionLog:
    """Remembers the last decision appended per pool, to append only what is news."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[Any, ...]] = {}

    @staticmethod
    def _signature(e: PoolScalingDecided) -> tuple[Any, ...]:
        return (e.limited_by, e.paused_until is not None, e.ready_mcpu, e.demand_mcpu, e.free_mcpu, e.pending_mcpu,
                e.live, e.pending, e.inactive, tuple((z.zone, z.successes, z.attempts) for z in e.zones))

    def is_news(self, e: PoolScalingDecided) -> bool:
        acted = e.requested or e.standing_requested or e.deleted
        previous = self._last.get(e.pool)
        nothing_at_all = previous is None and not acted and not e.ready_mcpu and not e.live and not e.inactive
        return bool(acted) or (not nothing_at_all and previous != self._signature(e))

    def appended(self, e: PoolScalingDecided) -> None:
        self._last[e.pool] = self._signature(e)
