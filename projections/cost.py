"""What an attempt costs: Hail's msec_mcpu and a configurable price table.

msec_mcpu follows Hail: milliseconds the attempt ran (start to end) times the cores it held in
mCPU (Hail bills `(rollup_time - start_time) * cores_mcpu`), so one core for one second is
1,000,000. It is summed per job (every attempt counts, as in Hail), per job group (recursively)
and per batch.

Cost is priced per resource: cores per core-hour, memory per GiB-hour, storage per GiB-hour,
each with a preemptible and a non-preemptible rate. The breakdown is keyed by resource name,
e.g. {"cpu/preemptible": 0.0012, "memory/preemptible": 0.0003, "storage": 0.00001}.

Prices load from YAML (every key optional; defaults are GCE n1 list prices, roughly):

    cpu_core_hour: 0.031611
    cpu_core_hour_preemptible: 0.006655
    memory_gib_hour: 0.004237
    memory_gib_hour_preemptible: 0.000892
    storage_gib_hour: 0.000054795   # pd-ssd 0.04/GiB-month over 730 h
    storage_gib_hour_preemptible: 0.000054795
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

_MSEC_PER_HOUR = 3_600_000
_GIB = 1024**3


class PriceTableError(ValueError):
    """The price file is malformed; the message names the key and what is expected."""


@dataclass(frozen=True)
class PriceTable:
    cpu_core_hour: float = 0.031611
    cpu_core_hour_preemptible: float = 0.006655
    memory_gib_hour: float = 0.004237
    memory_gib_hour_preemptible: float = 0.000892
    storage_gib_hour: float = 0.000054795
    storage_gib_hour_preemptible: float = 0.000054795

    @classmethod
    def from_yaml(cls, path: Path | str) -> PriceTable:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PriceTableError(f"cannot read the price table {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise PriceTableError(f"{path}: expected a mapping of price names to numbers")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PriceTableError(f"{path}: unknown price(s) {unknown}; known: {sorted(known)}")
        values: dict[str, float] = {}
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PriceTableError(f"{path}: {key} must be a non-negative number, got {value!r}")
            values[key] = float(value)
        return cls(**values)


@dataclass(frozen=True)
class AttemptUsage:
    """What one attempt held, and for how long."""

    duration_ms: int
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool


def billed_duration_ms(start_time: int | None, end_time: int | None) -> int:
    """Hail bills from the attempt's start to its end; an attempt that never started costs nothing."""
    if start_time is None or end_time is None:
        return 0
    return max(0, end_time - start_time)


def msec_mcpu(usage: AttemptUsage) -> int:
    return usage.duration_ms * usage.cores_mcpu


def cost_breakdown(usage: AttemptUsage, prices: PriceTable) -> dict[str, float]:
    """Cost per resource for one attempt; resources with zero cost are left out."""
    hours = usage.duration_ms / _MSEC_PER_HOUR
    suffix = "/preemptible" if usage.preemptible else "/nonpreemptible"
    if usage.preemptible:
        cpu, mem, disk = (prices.cpu_core_hour_preemptible, prices.memory_gib_hour_preemptible,
                          prices.storage_gib_hour_preemptible)
    else:
        cpu, mem, disk = prices.cpu_core_hour, prices.memory_gib_hour, prices.storage_gib_hour
    parts = {
        "cpu" + suffix: usage.cores_mcpu / 1000 * hours * cpu,
        "memory" + suffix: usage.memory_bytes / _GIB * hours * mem,
        "storage" + suffix: usage.storage_gib * hours * disk,
    }
    return {resource: value for resource, value in parts.items() if value > 0}


def add_breakdown(total: dict[str, float], part: dict[str, float]) -> dict[str, float]:
    """A new breakdown with `part` added, keys sorted (so equal sums store identically)."""
    merged = dict(total)
    for resource, value in part.items():
        merged[resource] = merged.get(resource, 0.0) + value
    return dict(sorted(merged.items()))
