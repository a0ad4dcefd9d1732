"""Workload files for the simulator: pools, users and the batches they submit (YAML).

    name: small
    seed: 1
    scheduler: {cycle_ms: 1000, autoscale_every_ms: 15000, sample_every_ms: 60000, fair_share_settle_s: 600}
    pools:
      - {name: standard, initial_instances: 4, max_instances: 8, boot_s: 90,
         preemptions_per_instance_hour: 0.1}
      # also: min_instances, max_live_instances, standing_worker_cores, standing_worker_idle_time_s,
      # scheduling_window_s (Hail's look-ahead), max_new_per_loop, idle_time_s, worker_cores
    users:
      - name: alice
        batches:
          - {count: 2, start_s: 0, every_s: 30, jobs: 100, cpu: "1", memory: standard,
             runtime: {dist: lognormal, median_s: 60, sigma: 0.5}}
          - {count: 1, start_s: 0, fanout: {parents: 10, children_per_parent: 5}, gather: true,
             runtime: {dist: constant, s: 20}}

Every mistake is reported with its path in the file (`users[0].batches[1].runtime.dist: ...`).
Job resources go through the real Hail rules (events.core.resources), so a batch lands in the
pool the real scheduler would choose.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from events.core.autoscale import PoolConfig
from events.core.resources import MEMORY_PER_CORE_MIB, MIB, ResourceError, pool_name, resolve_resources


class WorkloadError(ValueError):
    """The workload file is wrong; the message names the field and what is expected."""


@dataclass(frozen=True, slots=True)
class Runtime:
    """A job runtime distribution, sampled in milliseconds."""

    dist: str  # constant | uniform | exponential | lognormal
    a_s: float  # constant: s; uniform: min_s; exponential: mean_s; lognormal: median_s
    b_s: float = 0.0  # uniform: max_s; lognormal: sigma

    def sample_ms(self, rng: random.Random) -> int:
        if self.dist == "constant":
            seconds = self.a_s
        elif self.dist == "uniform":
            seconds = rng.uniform(self.a_s, self.b_s)
        elif self.dist == "exponential":
            seconds = rng.expovariate(1.0 / self.a_s)
        else:
            seconds = self.a_s * math.exp(rng.gauss(0.0, self.b_s))
        return max(1, int(seconds * 1000))


@dataclass(frozen=True, slots=True)
class BatchGroup:
    """`count` batches of one shape, submitted by one user every `every_ms` from `start_ms`."""

    user: str
    count: int
    start_ms: int
    every_ms: int
    jobs: int  # independent jobs (when no fanout)
    fanout_parents: int
    fanout_children: int  # children per parent; each child depends on one parent
    gather: bool  # one last job depending on every other job of the batch
    pool: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    runtime: Runtime

    @property
    def jobs_per_batch(self) -> int:
        shaped = self.fanout_parents * (1 + self.fanout_children) if self.fanout_parents else self.jobs
        return shaped + (1 if self.gather else 0)


@dataclass(frozen=True, slots=True)
class SimPool:
    config: PoolConfig
    initial_instances: int
    boot_ms: int
    preemptions_per_instance_hour: float


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    seed: int
    cycle_ms: int
    autoscale_every_ms: int
    sample_every_ms: int
    fair_share_settle_ms: int
    pools: tuple[SimPool, ...]
    batch_groups: tuple[BatchGroup, ...]

    @property
    def total_jobs(self) -> int:
        return sum(g.count * g.jobs_per_batch for g in self.batch_groups)


def load_workload(path: str | Path) -> Workload:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise WorkloadError(f"cannot read workload {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise WorkloadError(f"{path} is not valid YAML: {exc}") from exc
    return parse_workload(raw, default_name=Path(path).stem)


def parse_workload(raw: Any, default_name: str = "workload") -> Workload:
    top = _mapping(raw, "workload")
    scheduler = _mapping(top.get("scheduler", {}), "scheduler")
    pools = tuple(_pool(p, f"pools[{i}]") for i, p in enumerate(_list(top.get("pools"), "pools")))
    if not pools:
        raise WorkloadError("pools: list at least one pool")
    pool_names = {p.config.name for p in pools}
    groups = []
    for i, user in enumerate(_list(top.get("users"), "users")):
        user_map = _mapping(user, f"users[{i}]")
        name = _required(user_map, "name", f"users[{i}]", str)
        for j, batch in enumerate(_list(user_map.get("batches"), f"users[{i}].batches")):
            groups.append(_batch_group(batch, name, f"users[{i}].batches[{j}]", pool_names))
    if not groups:
        raise WorkloadError("users: at least one user with one batch is needed")
    return Workload(
        name=str(top.get("name", default_name)),
        seed=_int(top.get("seed", 0), "seed"),
        cycle_ms=_int(scheduler.get("cycle_ms", 1000), "scheduler.cycle_ms", minimum=1),
        autoscale_every_ms=_int(
            scheduler.get("autoscale_every_ms", 15_000), "scheduler.autoscale_every_ms", minimum=1
        ),
        sample_every_ms=_int(
            scheduler.get("sample_every_ms", 60_000), "scheduler.sample_every_ms", minimum=1
        ),
        fair_share_settle_ms=int(
            _number(scheduler.get("fair_share_settle_s", 600), "scheduler.fair_share_settle_s") * 1000
        ),
        pools=pools,
        batch_groups=tuple(groups),
    )


def _pool(raw: Any, where: str) -> SimPool:
    spec = _mapping(raw, where)
    worker_type = spec.get("worker_type", "standard")
    if worker_type not in MEMORY_PER_CORE_MIB:
        raise WorkloadError(
            f"{where}.worker_type: {worker_type!r}; use one of {', '.join(MEMORY_PER_CORE_MIB)}"
        )
    preemptible = spec.get("preemptible", True)
    if not isinstance(preemptible, bool):
        raise WorkloadError(f"{where}.preemptible: use true or false")
    config = PoolConfig(
        name=spec.get("name", pool_name(worker_type, preemptible)),
        worker_type=worker_type,
        preemptible=preemptible,
        worker_cores=_int(spec.get("worker_cores", 16), f"{where}.worker_cores", minimum=1),
        memory_per_core_bytes=MEMORY_PER_CORE_MIB[worker_type] * MIB,
        storage_gib=_int(spec.get("storage_gib", 375), f"{where}.storage_gib"),
        min_instances=_int(spec.get("min_instances", 0), f"{where}.min_instances"),
        max_instances=_int(spec.get("max_instances", 6250), f"{where}.max_instances"),
        max_live_instances=(None if spec.get("max_live_instances") is None
                            else _int(spec["max_live_instances"], f"{where}.max_live_instances")),
        max_new_per_loop=_int(spec.get("max_new_per_loop", 10), f"{where}.max_new_per_loop"),
        idle_time_ms=int(_number(spec.get("idle_time_s", 30), f"{where}.idle_time_s") * 1000),
        standing_worker_cores=(None if spec.get("standing_worker_cores") is None
                               else _int(spec["standing_worker_cores"], f"{where}.standing_worker_cores", minimum=1)),
        standing_worker_idle_time_ms=int(_number(spec.get("standing_worker_idle_time_s", 7200),
                                                 f"{where}.standing_worker_idle_time_s") * 1000),
        scheduling_window_ms=int(_number(spec.get("scheduling_window_s", 150), f"{where}.scheduling_window_s") * 1000),
    )
    problems = config.problems()
    if problems:
        raise WorkloadError(f"{where}: " + "; ".join(problems))
    return SimPool(
        config=config,
        initial_instances=_int(spec.get("initial_instances", 0), f"{where}.initial_instances"),
        boot_ms=int(_number(spec.get("boot_s", 90), f"{where}.boot_s") * 1000),
        preemptions_per_instance_hour=_number(
            spec.get("preemptions_per_instance_hour", 0), f"{where}.preemptions_per_instance_hour"
        ),
    )


def _batch_group(raw: Any, user: str, where: str, pool_names: set[str]) -> BatchGroup:
    spec = _mapping(raw, where)
    resources_spec = {k: spec[k] for k in ("cpu", "memory", "storage", "preemptible") if k in spec}
    try:
        resources = resolve_resources(resources_spec)
    except ResourceError as exc:
        raise WorkloadError(f"{where}.{exc.field.removeprefix('resources.')}: {exc.message}") from exc
    pool = spec.get("pool", pool_name(resources.worker_type, resources.preemptible))
    if pool not in pool_names:
        raise WorkloadError(f"{where}: its jobs need pool {pool!r}, which the workload does not define")
    fanout = _mapping(spec.get("fanout", {}), f"{where}.fanout")
    parents = _int(fanout.get("parents", 0), f"{where}.fanout.parents")
    jobs = _int(spec.get("jobs", 0), f"{where}.jobs")
    if not jobs and not parents:
        raise WorkloadError(f"{where}: give jobs: N or fanout: {{parents: P, children_per_parent: C}}")
    return BatchGroup(
        user=user,
        count=_int(spec.get("count", 1), f"{where}.count", minimum=1),
        start_ms=int(_number(spec.get("start_s", 0), f"{where}.start_s") * 1000),
        every_ms=int(_number(spec.get("every_s", 0), f"{where}.every_s") * 1000),
        jobs=jobs,
        fanout_parents=parents,
        fanout_children=_int(fanout.get("children_per_parent", 0), f"{where}.fanout.children_per_parent"),
        gather=bool(spec.get("gather", False)),
        pool=pool,
        cores_mcpu=resources.cores_mcpu,
        memory_bytes=resources.memory_bytes,
        storage_gib=resources.storage_gib,
        preemptible=resources.preemptible,
        runtime=_runtime(spec.get("runtime"), f"{where}.runtime"),
    )


def _runtime(raw: Any, where: str) -> Runtime:
    spec = _mapping(raw, where)
    dist = spec.get("dist")
    fields = {
        "constant": ("s",),
        "uniform": ("min_s", "max_s"),
        "exponential": ("mean_s",),
        "lognormal": ("median_s", "sigma"),
    }
    if dist not in fields:
        raise WorkloadError(f"{where}.dist: {dist!r}; use one of {', '.join(fields)}")
    values = [_number(_required(spec, name, where, object), f"{where}.{name}") for name in fields[dist]]
    if values[0] <= 0 and dist != "uniform":
        raise WorkloadError(f"{where}.{fields[dist][0]}: must be positive")
    return Runtime(dist, *values)


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise WorkloadError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise WorkloadError(f"{where}: expected a list")
    return raw


def _required(spec: Mapping[str, Any], key: str, where: str, kind: type) -> Any:
    if key not in spec or not isinstance(spec[key], kind):
        raise WorkloadError(f"{where}.{key}: required ({kind.__name__})")
    return spec[key]


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise WorkloadError(f"{where}: expected a non-negative number, got {raw!r}")
    return float(raw)


def _int(raw: Any, where: str, minimum: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise WorkloadError(f"{where}: expected an integer >= {minimum}, got {raw!r}")
    return raw
