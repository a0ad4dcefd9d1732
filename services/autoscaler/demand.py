"""The autoscaler's inputs, read off the scheduling view: each pool's instances and its look-ahead demand.

Both only read `SchedulingState`; the decisions are the core's (`events.core.autoscale`,
`events.core.lookahead`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from events.core.autoscale import InstanceStatus, PoolConfig, PoolSnapshot
from events.core.lookahead import Lookahead, UserQueue, enough_demand_mcpu, lookahead
from events.core.pool_fit import worker_fits
from projections.scheduling.model import InstanceState
from projections.scheduling.ready_queue import ReadyQueue
from projections.scheduling.state import SchedulingState


def instance_statuses(state: SchedulingState, pools: Mapping[str, PoolConfig],
                      standing: set[str]) -> list[InstanceStatus]:
    """The pools' instances not yet deleted: live ones, and deactivated ones (they count against max_instances)."""
    return [InstanceStatus(name=i.name, pool=i.pool, pending=i.state is InstanceState.PENDING,
                           free_mcpu=i.free_cores_mcpu, running_attempts=len(i.attempts), idle_since_ms=i.idle_since,
                           cores_mcpu=i.cores_mcpu, standing=i.name in standing,
                           inactive=i.state is InstanceState.INACTIVE)
            for i in state.instances.values() if i.pool in pools and not i.deleted]


def _cores_in_order(state: SchedulingState, queue: ReadyQueue, pool: PoolConfig) -> Iterator[int]:
    """The look-ahead's jobs: those a worker of the pool can hold, in a region they allow (the pool's
    one region: an instance there would never take a job whose regions exclude it; the front refuses
    such jobs at submit, `why` explains one queued before the pools moved)."""
    jobs = state.jobs
    for key in queue:
        j = jobs[key]
        d = j.demand
        if (worker_fits(pool, d.cores_mcpu, d.memory_bytes, d.storage_gib)
                and (j.regions is None or pool.region in j.regions)):
            yield d.cores_mcpu


def pool_lookahead(state: SchedulingState, pool: PoolConfig, snapshot: PoolSnapshot, loop_period_ms: int) -> Lookahead:
    """Hail's look-ahead over this pool's ready queues (one per user). Jobs no worker of the pool can
    hold are no reason to start one (they are explained as `no_pool_fits`), so they are left out."""
    running = state.running_cores.get(pool.name, {})
    users: dict[str, UserQueue] = {}
    for user, queue in state.ready_queues(pool.name):
        ready = sum(d.cores_mcpu * n for d, n in queue.shapes.items()
                    if worker_fits(pool, d.cores_mcpu, d.memory_bytes, d.storage_gib))
        users[user] = UserQueue(running.get(user, 0), ready, _cores_in_order(state, queue, pool))
    pending = snapshot.pending_mcpu if snapshot.pending_mcpu is not None else snapshot.pending * pool.worker_mcpu
    return lookahead(pool, users, loop_period_ms, enough_demand_mcpu(pool, snapshot.free_mcpu, pending))
