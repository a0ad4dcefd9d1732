"""Instance pools from a YAML (or JSON) file: one entry per pool, fields of `PoolConfig`.

    pools:
      - name: standard
        worker_type: standard
        preemptible: true
        worker_cores: 16
        min_instances: 1                 # kept live with standing workers...
        standing_worker_cores: 4         # ...of 4 cores (default: worker_cores)
        standing_worker_idle_time_ms: 7200000
        max_live_instances: 80           # pending + active (default: max_instances)
        max_instances: 100               # every instance not deleted yet
        max_new_per_loop: 10
        idle_time_ms: 30000
        scheduling_window_ms: 150000     # Hail's look-ahead: demand the scheduler reaches in 150 s

Fields left out take PoolConfig's defaults; memory per core defaults to the worker type's (Hail's
n1 machines). Without a file every process uses `default_pools(region)`. A bad file is refused
with a message naming the pool and the field (Hail's own checks, `PoolConfig.problems`).
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
    for name, value in entry.items():
        wanted = _TYPES.get(name)
        if wanted is not None and value is not None and not _is(value, wanted):
            raise PoolConfigError(f"{where}.{name}: expected {wanted.__name__}, got {value!r}")
        if value is None and name not in _OPTIONAL:
            raise PoolConfigError(f"{where}.{name}: must be set (leave the field out for its default)")
    values = {"region": region,
              "memory_per_core_bytes": MEMORY_PER_CORE_MIB[entry["worker_type"]] * MIB, **entry}
    pool = PoolConfig(**values)
    problems = pool.problems()
    if problems:
        raise PoolConfigError(f"{where} ({pool.name}): " + "; ".join(problems))
    return pool


_OPTIONAL = {"max_live_instances", "standing_worker_cores"}  # None means "as the other limit / as worker_cores"
_TYPES: dict[str, type] = {f.name: {"int": int, "str": str, "bool": bool, "int | None": int}.get(str(f.type), object)
                           for f in dataclasses.fields(PoolConfig)}


def _is(value: Any, wanted: type) -> bool:
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, wanted)
