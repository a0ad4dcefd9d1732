"""Benchmark: the simulator's wall-clock speed (scheduling decisions/s, simulated events/s).

Run: python tests/bench/bench_simulator.py [--full]
Default: the small workload and a 1,000-instance x 100,000-job fleet (about a tenth of
deploy/workloads/fleet-10k-1m.yaml). --full also runs fleet-10k-1m itself (minutes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from services.simulator import load_workload, parse_workload, simulate

WORKLOADS = Path(__file__).parents[2] / "deploy" / "workloads"


def tenth_of_the_fleet():
    lognormal = {"dist": "lognormal", "median_s": 600, "sigma": 0.5}
    return parse_workload(
        {
            "name": "fleet-1k-100k",
            "seed": 1,
            "scheduler": {"sample_every_ms": 60_000, "fair_share_settle_s": 900},
            "pools": [
                {
                    "name": "standard",
                    "initial_instances": 800,
                    "max_instances": 800,
                    "preemptions_per_instance_hour": 0.05,
                },
                {"name": "highmem", "worker_type": "highmem", "initial_instances": 200, "max_instances": 200},
            ],
            "users": [
                {"name": "alice", "batches": [{"count": 5, "jobs": 5_000, "runtime": lognormal}]},
                {
                    "name": "bob",
                    "batches": [{"count": 10, "jobs": 2_500, "cpu": "500m", "runtime": lognormal}],
                },
                {"name": "carol", "batches": [{"count": 2, "jobs": 5_000, "cpu": "2", "runtime": lognormal}]},
                {
                    "name": "dave",
                    "batches": [
                        {
                            "count": 10,
                            "fanout": {"parents": 100, "children_per_parent": 9},
                            "runtime": {"dist": "constant", "s": 300},
                        }
                    ],
                },
                {
                    "name": "erin",
                    "batches": [{"count": 4, "start_s": 1200, "jobs": 2_500, "runtime": lognormal}],
                },
                {
                    "name": "frank",
                    "batches": [{"count": 4, "jobs": 5_000, "memory": "highmem", "runtime": lognormal}],
                },
            ],
        }
    )


def run(workload) -> None:
    started = time.perf_counter()
    report = simulate(workload)
    wall = time.perf_counter() - started
    r, t = report.results, report.timing
    fair = r["fair_share"]
    print(
        f"{r['workload']}: {r['jobs']:,} jobs, {r['peak_instances']:,} instances, wall {wall:.1f} s; "
        f"{t['decisions_per_s']:,.0f} scheduling decisions/s, {t['simulated_events_per_s']:,.0f} events/s; "
        f"fair-share max |error| {fair['max_abs_error']:.2%} over {fair['settled_samples']} settled samples"
    )


def main() -> None:
    run(load_workload(WORKLOADS / "small.yaml"))
    run(tenth_of_the_fleet())
    if "--full" in sys.argv:
        run(load_workload(WORKLOADS / "fleet-10k-1m.yaml"))


if __name__ == "__main__":
    main()
