"""What attempts cost: Hail's resources (SKUs), usage in integers, and a configurable price table.

Usage follows Hail. Each attempt holds a quantity of a few resources, named as Hail names them:

    compute/<family>-preemptible/1       cores in mCPU              (also -nonpreemptible)
    memory/<family>-preemptible/1        memory in MiB
    disk/local-ssd/preemptible/1         the job's storage in MiB   (also nonpreemptible)
    service-fee/1                        cores in mCPU

and its usage of each is quantity x milliseconds billed, an integer, so sums of usage are exact
whatever order they are added in. Cost is priced from usage only: usage x the resource's rate
(dollars per unit-millisecond), each resource separately (the breakdown), the total as their sum in
resource order. So a row's cost is a function of its usage, never of how its attempts' billing was
split into steps (projections/readmodel/ledger.py).

An attempt is billed from its start to its end, as Hail bills `rollup_time - start_time`; while it
runs, up to the latest time its worker reported it running (`accrued_ms`). msec_mcpu is Hail's:
milliseconds billed times mCPU (one core for one second is 1,000,000).

Prices load from YAML (every key optional; defaults are GCE n1 list prices, roughly, and Hail's
service fee):

    cpu_core_hour: 0.031611
    cpu_core_hour_preemptible: 0.006655
    memory_gib_hour: 0.004237
    memory_gib_hour_preemptible: 0.000892
    storage_gib_hour: 0.000054795   # pd-ssd 0.04/GiB-month over 730 h
    storage_gib_hour_preemptible: 0.000054795
    service_fee_core_hour: 0.01
    machine_family: n1              # the <family> of the compute and memory resources

The table is the read model's configuration: the live projector, `squall replay` and the front end
(for estimates) must be given the same one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

_MSEC_PER_HOUR = 3_600_000
_MIB = 1024**2
_FAMILY = re.compile(r"[a-z][a-z0-9]{0,15}")


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
    service_fee_core_hour: float = 0.01
    machine_family: str = "n1"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "machine_family":
                if not isinstance(value, str) or not _FAMILY.fullmatch(value):
                    raise PriceTableError(f"machine_family must be a short lower-case name such as n1, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 \
                    or value == float("inf"):
                raise PriceTableError(f"{f.name} must be a non-negative number, got {value!r}")

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
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key != "machine_family" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise PriceTableError(f"{path}: {key} must be a non-negative number, got {value!r}")
            values[key] = value if key == "machine_family" else float(value)
        try:
            return cls(**values)
        except PriceTableError as exc:
            raise PriceTableError(f"{path}: {exc}") from None

    def to_yaml_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _tier(preemptible: bool) -> str:
    return "preemptible" if preemptible else "nonpreemptible"


class Pricing:
    """A price table as Hail's resources: what an attempt holds of each, and each one's rate."""

    def __init__(self, prices: PriceTable) -> None:
        self.prices = prices
        family = prices.machine_family
        self._names = {p: (f"compute/{family}-{_tier(p)}/1", f"memory/{family}-{_tier(p)}/1",
                           f"disk/local-ssd/{_tier(p)}/1") for p in (True, False)}
        self._rates: dict[str, float] = {}
        self._held: dict[tuple[int, int, int, bool], tuple[tuple[str, int], ...]] = {}

    def quantities(self, cores_mcpu: int, memory_bytes: int, storage_gib: int,
                   preemptible: bool) -> tuple[tuple[str, int], ...]:
        """(resource, quantity) for what an attempt holds, the zero ones left out, in resource order."""
        key = (cores_mcpu, memory_bytes, storage_gib, preemptible)
        held = self._held.get(key)
        if held is None:
            compute, memory, disk = self._names[preemptible]
            held = tuple(sorted((name, q) for name, q in (
                (compute, cores_mcpu), (memory, memory_bytes // _MIB), (disk, storage_gib * 1024),
                ("service-fee/1", cores_mcpu)) if q > 0))
            if len(self._held) < 4096:  # a handful of distinct shapes in practice
                self._held[key] = held
        return held

    def rate(self, resource: str) -> float:
        """Dollars per unit-millisecond of a resource, from its name (so usage recorded under another
        machine family is still priced)."""
        rate = self._rates.get(resource)
        if rate is None:
            rate = self._rates[resource] = self._rate_of(resource)
        return rate

    def _rate_of(self, resource: str) -> float:
        p = self.prices
        preemptible = "-preemptible/" in resource or "/preemptible/" in resource
        kind = resource.split("/", 1)[0]
        if kind == "compute":
            per_hour = (p.cpu_core_hour_preemptible if preemptible else p.cpu_core_hour) / 1000  # per mCPU
        elif kind == "memory":
            per_hour = (p.memory_gib_hour_preemptible if preemptible else p.memory_gib_hour) / 1024  # per MiB
        elif kind == "disk":
            per_hour = (p.storage_gib_hour_preemptible if preemptible else p.storage_gib_hour) / 1024
        elif kind == "service-fee":
            per_hour = p.service_fee_core_hour / 1000
        else:
            raise ValueError(f"no price for resource {resource!r}")
        return per_hour / _MSEC_PER_HOUR

    def price(self, usage: dict[str, int]) -> tuple[float, dict[str, float]]:
        """(cost, cost per resource) of some usage: a function of the usage alone."""
        breakdown = {resource: usage[resource] * self.rate(resource) for resource in sorted(usage)
                     if usage[resource] > 0}
        return sum(breakdown.values()), breakdown


def accrued_ms(start_time: int | None, end_time: int | None, running_until: int | None) -> int:
    """The milliseconds an attempt is billed for, from what the log says so far.

    Ended: start to end (Hail). Running: start to the latest time its worker reported it running
    (Hail's `rollup_time`). Never started: nothing.
    """
    if start_time is None:
        return 0
    if end_time is not None:
        return max(0, end_time - start_time)
    if running_until is None:
        return 0
    return max(0, running_until - start_time)


def add_usage(total: dict[str, int], quantities: tuple[tuple[str, int], ...], ms: int) -> dict[str, int]:
    """`total` plus quantities x ms, resources with no usage left out, keys in resource order."""
    merged = dict(total)
    for resource, quantity in quantities:
        merged[resource] = merged.get(resource, 0) + quantity * ms
    return {resource: merged[resource] for resource in sorted(merged) if merged[resource] != 0}
