"""Whether any worker of the configured pools can ever hold a job: the check behind refusing a job at
submit, and behind "why" for a job that got in anyway (submitted before the pools shrank).

A job runs only in the pool its worker type and preemptibility name (`resources.pool_name`), on one
worker: it fits when that pool exists and one of its workers has the cores, memory and storage the
job asks for. A job-private job (machine_type) gets a machine of its own and always fits. The pools
are the ones the autoscaler and the scheduler read (events/pools_file.py), so a job is
refused exactly when no instance the autoscaler could ever start would take it.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.core.autoscale import PoolConfig
from events.core.resources import GIB, pool_name


def misfit(cores_mcpu: int, memory_bytes: int, storage_gib: int, worker_type: str, preemptible: bool,
           pools: Sequence[PoolConfig], machine_type: str | None = None) -> str | None:
    """None when a worker of the job's pool can hold the job; else why not, naming the job's pool and
    the largest pool, in words a user can act on."""
    if machine_type or not pools:
        return None
    missing = f"no pool runs {worker_type} {'preemptible' if preemptible else 'non-preemptible'} jobs"
    return misfit_in_pool(cores_mcpu, memory_bytes, storage_gib, pool_name(worker_type, preemptible), pools, missing)


def misfit_in_pool(cores_mcpu: int, memory_bytes: int, storage_gib: int, pool: str, pools: Sequence[PoolConfig],
                   missing: str | None = None) -> str | None:
    """`misfit` for a job whose pool is known by name (the scheduler's and the autoscaler's view)."""
    if not pools:
        return None
    own = next((p for p in pools if p.name == pool), None)
    if own is not None and worker_fits(own, cores_mcpu, memory_bytes, storage_gib):
        return None
    largest = max(pools, key=lambda p: (p.worker_mcpu, p.worker_memory_bytes, p.storage_gib))  # first of equals
    needs = f"{_cores(cores_mcpu)} cores, {memory_bytes / GIB:.1f} GiB memory and {storage_gib} GiB storage"
    if own is None:
        where = missing or f"no pool {pool} is configured"
    else:
        where = f"a worker of pool {own.name}, where it would run, has {_worker(own)}"
    return (f"no pool can ever run this job: it needs {needs}; {where}. The largest pool is {largest.name} "
            f"({_worker(largest)} per worker); ask for less, or for the memory keyword of a bigger worker type")


def region_misfit(regions: Sequence[str] | None, worker_type: str, preemptible: bool, pools: Sequence[PoolConfig],
                  machine_type: str | None = None) -> str | None:
    """None when the job's pool runs in one of the job's regions; else why not. Each pool runs in one
    region (PoolConfig.region) and the autoscaler starts a pool's instances there, so a job whose
    regions exclude its pool's region would wait for ever while the autoscaler started instances it
    may not use. A job-private job gets a machine in its first region and always fits; a job with
    no regions runs anywhere."""
    if machine_type:
        return None
    return region_misfit_in_pool(regions, pool_name(worker_type, preemptible), pools)


def region_misfit_in_pool(regions: Sequence[str] | None, pool: str, pools: Sequence[PoolConfig]) -> str | None:
    """`region_misfit` for a job whose pool is known by name (the scheduler's view, for `why`)."""
    if not pools or regions is None:
        return None
    own = next((p for p in pools if p.name == pool), None)
    if own is None or own.region in regions:
        return None  # a missing pool is `misfit`'s to explain
    served = sorted({p.region for p in pools})
    return (f"no pool can ever run this job in its regions ({', '.join(regions)}): pool {own.name}, where it "
            f"would run, is in region {own.region}; the pools serve {', '.join(served)}")


def worker_fits(pool: PoolConfig, cores_mcpu: int, memory_bytes: int, storage_gib: int) -> bool:
    """Whether one worker of `pool`, empty, holds a job of this size."""
    return (cores_mcpu <= pool.worker_mcpu and memory_bytes <= pool.worker_memory_bytes
            and storage_gib <= pool.storage_gib)


def _worker(pool: PoolConfig) -> str:
    return (f"{pool.worker_cores} cores, {pool.worker_memory_bytes / GIB:.1f} GiB memory and "
            f"{pool.storage_gib} GiB storage")


def _cores(mcpu: int) -> str:
    return f"{mcpu / 1000:g}"
