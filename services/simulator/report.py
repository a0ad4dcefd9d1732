"""What a simulation measured, and how it is printed.

`Report.results` is a pure function of the workload and the seed (two runs give the same
results, byte for byte, and the same `digest`); `Report.timing` holds wall-clock numbers
(scheduling decisions per second), which naturally differ between runs.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from events.core.fairshare import UserDemand, allocate


def percentiles_ms(values: Sequence[int], points: Sequence[int] = (50, 95, 99)) -> dict[str, int]:
    """Nearest-rank percentiles of integer milliseconds (an empty series gives zeros)."""
    if not values:
        return {f"p{p}": 0 for p in points}
    ordered = sorted(values)
    return {f"p{p}": ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))] for p in points}


@dataclass(slots=True)
class FairShareSample:
    t_ms: int
    pool: str
    errors: dict[str, float] | None  # user -> (running - target) / target; None: pool not saturated
    settled: bool  # saturated and no demand jump within the settle time: counts toward the error bound


def fair_share_errors(
    running: Mapping[str, int], ready: Mapping[str, int], capacity_mcpu: int
) -> dict[str, float]:
    """Each user's deviation from water-filling `capacity_mcpu` over the users' total demand."""
    demand = {u: UserDemand(0, running.get(u, 0) + ready.get(u, 0)) for u in set(running) | set(ready)}
    targets = allocate(demand, capacity_mcpu)
    return {u: round((running.get(u, 0) - t) / t, 6) for u, t in sorted(targets.items()) if t > 0}


@dataclass(slots=True)
class Recorder:
    """Accumulates measurements while the simulation runs."""

    waits_by_user: dict[str, array] = field(default_factory=dict)
    used_area: int = 0  # mCPU × ms of running jobs
    capacity_area: int = 0  # mCPU × ms of active instances
    last_ms: int = 0
    samples: list[FairShareSample] = field(default_factory=list)
    placements: int = 0
    cycles: int = 0
    preempted_attempts: int = 0
    peak_instances: int = 0
    schedule_wall_s: float = 0.0
    schedule_cpu_s: float = 0.0

    def wait(self, user: str, wait_ms: int) -> None:
        waits = self.waits_by_user.get(user)
        if waits is None:
            waits = self.waits_by_user[user] = array("q")
        waits.append(wait_ms)

    def advance(self, now_ms: int, used_mcpu: int, active_mcpu: int) -> None:
        elapsed = now_ms - self.last_ms
        if elapsed > 0:
            self.used_area += used_mcpu * elapsed
            self.capacity_area += active_mcpu * elapsed
            self.last_ms = now_ms


@dataclass(frozen=True, slots=True)
class Report:
    results: dict[str, Any]
    timing: dict[str, Any]

    @property
    def digest(self) -> str:
        canonical = json.dumps(self.results, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"results": self.results, "digest": self.digest, "timing": self.timing}

    def to_text(self) -> str:
        r, t = self.results, self.timing
        lines = [
            f"workload {r['workload']} (seed {r['seed']}): {r['jobs']:,} jobs, peak {r['peak_instances']:,} instances",
            f"  simulated {r['simulated_s']:,.0f} s in {t['wall_s']:.1f} s wall ({t['cpu_s']:.1f} s CPU)",
            f"  scheduling: {r['placements']:,} placements in {r['cycles']:,} cycles, "
            f"{t['scheduling_wall_s']:.1f} s wall -> {t['decisions_per_s']:,.0f} decisions/s "
            f"({t['decisions_per_cpu_s']:,.0f} per CPU-second) "
            f"({t['simulated_events_per_s']:,.0f} simulated events/s overall)",
            f"  utilisation {r['utilisation']:.1%}; preempted attempts {r['preempted_attempts']:,}; "
            f"instances requested {r['instances_requested']:,}, deleted {r['instances_deleted']:,}",
            "  queue wait (ready -> scheduled) " + _waits(r["queue_wait_ms"]),
        ]
        for user, waits in r["queue_wait_ms_by_user"].items():
            lines.append(f"    {user:<14} {_waits(waits)}")
        fair = r["fair_share"]
        lines.append(
            f"  fair share once saturated and settled ({fair['settled_samples']} of {fair['samples']} samples; "
            f"{fair['saturated_samples']} saturated, settled = {fair['settle_s']:g} s after the last submission"
            f"): max |error| {fair['max_abs_error']:.2%}, mean |error| {fair['mean_abs_error']:.2%}"
        )
        settling = fair["including_settling"]
        lines.append(
            f"    including settling samples: max |error| {settling['max_abs_error']:.2%}, "
            f"p95 |error| {settling['p95_abs_error']:.2%}"
        )
        for user, stats in fair["by_user"].items():
            lines.append(
                f"    {user:<14} mean {stats['mean_error']:+.2%}  max |error| {stats['max_abs_error']:.2%}"
            )
        series = fair["series"]
        if series:
            lines.append("  fair-share error over time (saturated samples, evenly picked; * = settling):")
            step = max(1, len(series) // 10)
            for point in series[::step]:
                errors = "  ".join(f"{u} {e:+.1%}" for u, e in point["errors"].items())
                mark = " " if point["settled"] else "*"
                lines.append(f"   {mark}t={point['t_s']:>8,.0f}s {point['pool']:<10} {errors}")
        lines.append(f"  digest {self.digest}")
        return "\n".join(lines)


def _waits(waits: Mapping[str, int]) -> str:
    return "  ".join(f"{k} {v / 1000:,.1f}s" for k, v in waits.items())
