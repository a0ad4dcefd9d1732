"""A job no worker of the configured pools can hold is told apart (events/core/pool_fit.py), on the
local stack's own pools (deploy/stack.py writes them; events/pools_file.py reads them)."""

from __future__ import annotations

from pathlib import Path

from deploy.stack import StackState, write_pools
from events.core.autoscale import default_pools
from events.core.pool_fit import misfit
from events.core.resources import GIB, MIB, ResourceDefaults, resolve_resources
from events.pools_file import load_pools


def local_pools(tmp_path: Path):  # type: ignore[no-untyped-def]
    state = StackState(home=str(tmp_path), api_url="", token="", billing_project="", bootstrap="", database_url="",
                       topic_prefix="", port=0, embedded_kafka=False, embedded_postgres=False, workers=1,
                       worker_cores=2)
    return load_pools(write_pools(state), region="local")


def job_misfit(resources: dict[str, object], pools) -> str | None:  # type: ignore[no-untyped-def]
    r = resolve_resources(resources, ResourceDefaults())
    return misfit(r.cores_mcpu, r.memory_bytes, r.storage_gib, r.worker_type, r.preemptible, pools, r.machine_type)


def test_on_the_local_stacks_2_core_pools_a_4_core_job_never_fits_and_the_message_names_the_pools(tmp_path) -> None:
    pools = local_pools(tmp_path)
    assert {p.worker_cores for p in pools} == {2}
    problem = job_misfit({"cpu": "4"}, pools)
    assert problem is not None
    assert "needs 4 cores" in problem and "pool standard, where it would run, has 2 cores" in problem
    assert "The largest pool is highmem (2 cores, 13.0 GiB memory and 20 GiB storage" in problem


def test_what_a_worker_can_hold_fits(tmp_path) -> None:
    pools = local_pools(tmp_path)
    for resources in ({"cpu": "2"}, {"cpu": "0.25", "memory": "lowmem"}, {"cpu": "1", "memory": "highmem"},
                      {"cpu": "2", "storage": "20Gi"}, {"cpu": "1", "preemptible": False},
                      {"machine_type": "n1-standard-32"}):  # a job-private machine of its own
        assert job_misfit(resources, pools) is None, resources


def test_memory_and_storage_beyond_a_worker_do_not_fit(tmp_path) -> None:
    pools = local_pools(tmp_path)
    assert job_misfit({"memory": "20Gi"}, pools) is not None  # highmem, raised to 4 cores
    assert "21 GiB storage" in (job_misfit({"cpu": "1", "storage": "21Gi"}, pools) or "")
    assert job_misfit({"cpu": "1", "memory": f"{8 * 1024}Mi"}, default_pools()) is None


def test_a_pool_missing_from_the_configuration_runs_nothing() -> None:
    only_standard = tuple(p for p in default_pools() if p.name == "standard")
    problem = misfit(1000, 2 * GIB, 0, "highmem", True, only_standard)
    assert problem is not None and "no pool runs highmem preemptible jobs" in problem
    assert misfit(1000, 3840 * MIB, 0, "standard", True, only_standard) is None
    assert misfit(64_000, 0, 0, "standard", True, ()) is None  # no pools known: nothing to check against
