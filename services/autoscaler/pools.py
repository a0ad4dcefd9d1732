"""Instance pools from a YAML (or JSON) file: one entry per pool, fields of `PoolConfig`.

    pools:
      - name: standard
        worker_type: standard
        preemptible: true
        worker_cores: 16
        min_instances: 0
        max_instances: 100
        idle_time_ms: 30000

Fields left out take PoolConfig's defaults; memory per core defaults to the worker type's (Hail's
n1 machines). Without a file every process uses `default_pools(region)`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from events.core.autoscale import PoolConfig, default_pools
from events.core.resources import MEMORY_PER_CORE_MIB, MIB, WORKER_TYPES


class PoolConfigError(ValueError):
    """The pools file is malformed; the message names the pool and field."""


_FIELDS = {f.name for f in dataclasses.fields(PoolConfig)}


def load_pools(path: Path | None, region: str = "local") -> tuple[PoolConfig, ...]:
    if path is None:
        return default_pools(region)
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PoolConfigError(f"cannot read pools file {path}: {exc}") from exc
    entries = document.get("pools") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PoolConfigError(f"{path}: expected a top-level 'pools:' list with at least one pool")
    pools = tuple(_pool(entry, i, region, path) for i, entry in enumerate(entries))
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise PoolConfigError(f"{path}: pool names must be unique, got {names}")
    return pools


def _pool(entry: Any, index: int, region: str, path: Path) -> PoolConfig:
    where = f"{path}: pools[{index}]"
    if not isinstance(entry, dict):
        raise PoolConfigError(f"{where} must be a mapping of PoolConfig fields")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise PoolConfigError(f"{where}: unknown field {unknown[0]!r}; known: {', '.join(sorted(_FIELDS))}")
    for required in ("name", "worker_type", "preemptible"):
        if required not in entry:
            raise PoolConfigError(f"{where}: missing {required!r}")
    if entry["worker_type"] not in WORKER_TYPES:
        raise PoolConfigError(f"{where}.worker_type: {entry['worker_type']!r} is not one of {', '.join(WORKER_TYPES)}")
    values = {"region": region,
              "memory_per_core_bytes": MEMORY_PER_CORE_MIB[entry["worker_type"]] * MIB, **entry}
    try:
        pool = PoolConfig(**values)
    except TypeError as exc:
        raise PoolConfigError(f"{where}: {exc}") from exc
    if pool.min_instances > pool.max_instances or pool.worker_cores <= 0:
        raise PoolConfigError(f"{where}: need 0 < worker_cores and min_instances <= max_instances")
    return pool
