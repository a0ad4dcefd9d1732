"""Refuse at submit a job no worker of the configured pools can hold (it would wait for ever while the
autoscaler started instances too small for it). The rule is the core's (events/core/pool_fit.py); the
pools are the ones the autoscaler reads (`--pools`, events/pools_file.py).

Likewise a job whose regions exclude the region of the pool it would run in (events/core/pool_fit.py
`region_misfit`): each pool runs in one region, where the autoscaler starts its instances, so every
accepted job's instances are started in one of its regions."""

from __future__ import annotations

import functools

from events.catalog import Resources
from events.core.autoscale import PoolConfig
from events.core.pool_fit import misfit, region_misfit
from services.front.errors import InvalidRequest


def check_fits_a_pool(field: str, resources: Resources, pools: tuple[PoolConfig, ...],
                      regions: tuple[str, ...] | None = None) -> None:
    problem = _misfit(resources, pools)
    if problem is not None:
        raise InvalidRequest(f"{field}.resources", problem)
    problem = region_misfit(regions, resources.worker_type, resources.preemptible, pools, resources.machine_type)
    if problem is not None:
        raise InvalidRequest(f"{field}.regions", problem)


@functools.lru_cache(maxsize=4096)  # a bunch repeats a handful of resource requests
def _misfit(resources: Resources, pools: tuple[PoolConfig, ...]) -> str | None:
    return misfit(resources.cores_mcpu, resources.memory_bytes, resources.storage_gib, resources.worker_type,
                  resources.preemptible, pools, resources.machine_type)
