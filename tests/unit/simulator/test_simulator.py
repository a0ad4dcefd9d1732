"""The simulator: deterministic for a seed, fair once saturated, faithful to DAGs and capacity."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.simulator import WorkloadError, load_workload, parse_workload, simulate

SMALL = Path(__file__).parents[3] / "deploy" / "workloads" / "small.yaml"


def workload(**overrides):
    raw = {
        "name": "t",
        "seed": 1,
        "scheduler": {"cycle_ms": 1000, "sample_every_ms": 5000, "fair_share_settle_s": 30},
        "pools": [{"name": "standard", "initial_instances": 2, "max_instances": 2}],
        "users": [{"name": "u", "batches": [{"jobs": 10, "runtime": {"dist": "constant", "s": 10}}]}],
    }
    raw.update(overrides)
    return parse_workload(raw)


def test_two_runs_with_the_same_seed_give_the_same_report():
    first, second = simulate(load_workload(SMALL)), simulate(load_workload(SMALL))
    assert first.results == second.results
    assert first.digest == second.digest
    assert simulate(load_workload(SMALL), seed=99).digest != first.digest


def test_small_workload_runs_every_job_and_stays_fair_once_saturated():
    report = simulate(load_workload(SMALL))
    results = report.results
    assert results["placements"] == results["jobs"] + results["preempted_attempts"]
    assert results["preempted_attempts"] > 0  # the workload preempts, and preempted jobs run again
    fair = results["fair_share"]
    assert fair["settled_samples"] >= 10
    assert fair["max_abs_error"] <= 0.05
    assert fair["mean_abs_error"] <= 0.02
    assert set(results["queue_wait_ms_by_user"]) == {"alice", "bob", "carol"}
    assert 0.5 < results["utilisation"] <= 1.0


def test_dag_children_wait_for_their_parents():
    # 2 parents with 3 children each and a gather job: three generations of 10 s on ample capacity
    w = workload(
        users=[
            {
                "name": "u",
                "batches": [
                    {
                        "fanout": {"parents": 2, "children_per_parent": 3},
                        "gather": True,
                        "runtime": {"dist": "constant", "s": 10},
                    }
                ],
            }
        ]
    )
    results = simulate(w).results
    assert results["jobs"] == 9 and results["placements"] == 9
    assert 30 <= results["simulated_s"] <= 33  # never earlier than parent -> child -> gather


def test_capacity_bounds_throughput():
    # 64 one-core jobs of 10 s on 2 x 16 cores: exactly two waves
    w = workload(users=[{"name": "u", "batches": [{"jobs": 64, "runtime": {"dist": "constant", "s": 10}}]}])
    results = simulate(w).results
    assert 20 <= results["simulated_s"] <= 22
    assert results["queue_wait_ms"]["p99"] >= 10_000  # the second wave waited for the first


def test_the_autoscaler_grows_an_empty_pool_and_deletes_idle_instances():
    w = workload(
        pools=[
            {"name": "standard", "initial_instances": 0, "max_instances": 4, "boot_s": 30, "idle_time_s": 30}
        ]
    )
    results = simulate(w).results
    assert results["instances_requested"] == 1
    assert results["queue_wait_ms"]["p50"] >= 30_000  # waited for the boot


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pools": []}, "pools: list at least one pool"),
        (
            {"users": [{"name": "u", "batches": [{"jobs": 1, "runtime": {"dist": "zipf"}}]}]},
            r"users\[0\].batches\[0\].runtime.dist",
        ),
        (
            {
                "users": [
                    {
                        "name": "u",
                        "batches": [{"jobs": 1, "cpu": "3", "runtime": {"dist": "constant", "s": 1}}],
                    }
                ]
            },
            r"batches\[0\].cpu: '3' is not a power of two",
        ),
        (
            {
                "users": [
                    {
                        "name": "u",
                        "batches": [
                            {"jobs": 1, "memory": "highmem", "runtime": {"dist": "constant", "s": 1}}
                        ],
                    }
                ]
            },
            "need pool 'highmem'",
        ),
        (
            {"users": [{"name": "u", "batches": [{"runtime": {"dist": "constant", "s": 1}}]}]},
            "give jobs: N or fanout",
        ),
        ({"scheduler": {"cycle_ms": 0}}, r"scheduler.cycle_ms: expected an integer >= 1"),
        ({"pools": [{"name": "standard", "min_instances": 3, "max_live_instances": 2, "max_instances": 4}]},
         r"pools\[0\]: need 0 <= min_instances <= max_live_instances <= max_instances"),
        ({"pools": [{"name": "standard", "standing_worker_cores": 32}]},
         r"pools\[0\]: standing_worker_cores must be between 1 and worker_cores"),
    ],
)
def test_workload_mistakes_name_the_field(change, message):
    with pytest.raises(WorkloadError, match=message):
        workload(**change)


def test_shipped_workloads_parse():
    directory = SMALL.parent
    sizes = {path.stem: load_workload(path).total_jobs for path in directory.glob("*.yaml")}
    assert sizes["fleet-10k-1m"] == 1_000_000
    assert sizes["hail-open-goal"] == 5_025_000


def test_the_fleets_running_counts_agree_with_listing_every_instance():
    from events.core.autoscale import PoolSnapshot
    from services.simulator import Simulation

    class Checked(Simulation):
        checks = 0

        def _autoscale(self) -> None:
            for pool in self.fleet.pools:
                listed = PoolSnapshot.of(self.fleet.statuses(pool))
                kept = self.fleet.snapshot(pool)
                assert (kept.live, kept.pending, kept.free_mcpu, kept.pending_mcpu) == (
                    listed.live,
                    listed.pending,
                    listed.free_mcpu,
                    listed.pending_mcpu,
                )
                assert sorted(i.name for i in kept.idle) == sorted(i.name for i in listed.idle)
                Checked.checks += 1
            super()._autoscale()

    Checked(load_workload(SMALL)).run()
    assert Checked.checks > 50


def test_long_runs_can_report_progress():
    from services.simulator import Simulation

    lines: list[str] = []
    Simulation(load_workload(SMALL)).run(progress=lines.append, progress_every_s=0.0)
    assert lines and "jobs done" in lines[0]


def test_standing_workers_and_max_live_instances_shape_the_simulated_fleet():
    from services.simulator import Simulation

    w = workload(pools=[{"name": "standard", "initial_instances": 0, "min_instances": 1, "standing_worker_cores": 4,
                         "max_live_instances": 3, "max_instances": 6, "boot_s": 30, "idle_time_s": 30}],
                 users=[{"name": "u", "batches": [{"jobs": 200, "start_s": 300,
                                                          "runtime": {"dist": "constant", "s": 60}}]}])
    peak = []

    class Watched(Simulation):
        def _autoscale(self) -> None:
            super()._autoscale()
            live = list(self.fleet.live["standard"].values())
            peak.append(len(live))
            assert len(live) <= 3, "max_live_instances"

    sim = Watched(w)
    sim.run()
    first = sim.fleet.instances[0]
    assert first.standing and first.capacity_mcpu == 4_000  # the minimum came first, as a small standing worker
    assert max(peak) == 3 and sum(1 for i in sim.fleet.instances if not i.standing) >= 2
