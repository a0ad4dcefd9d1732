"""Hail Batch's resource rules: a job spec's `resources` map resolved to what the scheduler packs.

The front end calls `resolve_resources` once per job spec; the result is stored in the
`JobCreated` event, so scheduling never re-parses strings. Rules (Hail's `front_end/validate.py`
and `_create_jobs`):

- cpu is a power of two times 0.25 core ("250m", "0.5", "1", "2", ... "16");
- memory is a keyword (lowmem → highcpu workers, standard, highmem → highmem workers) or a size;
  a size picks the cheapest worker type that can hold it;
- cores are raised until they cover the memory, rounded up to a power of two (at least 250 mCPU),
  and memory becomes cores × the worker type's memory per core; the result must fit one worker;
- storage is 0, or between 10 GiB and 64 TiB;
- machine_type (a job-private VM) cannot be combined with cpu or memory;
- preemptible defaults to true.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from events.catalog import Resources

MIB: Final = 1024**2
GIB: Final = 1024**3

# Memory per core of each worker type on GCP n1 machines, in MiB (Hail's MEMORY_PER_CORE_MIB).
MEMORY_PER_CORE_MIB: Final = {"highcpu": 924, "standard": 3840, "highmem": 6656}
# Memory per core on n2 machines, for job-private machine types such as n2-highmem-8.
N2_MEMORY_PER_CORE_MIB: Final = {"highcpu": 1024, "standard": 4096, "highmem": 8192}
MEMORY_KEYWORD_WORKER_TYPE: Final = {"lowmem": "highcpu", "standard": "standard", "highmem": "highmem"}
WORKER_TYPES: Final = ("standard", "highmem", "highcpu")

# Relative on-demand prices of n1 resources (USD per vCPU-hour, per GiB-hour). Only the ratio
# matters: it decides which worker type is cheapest for a memory size given in bytes.
_PRICE_PER_CORE_HOUR: Final = 0.031611
_PRICE_PER_GIB_HOUR: Final = 0.004237

MIN_CORES_MCPU: Final = 250
MIN_NONZERO_STORAGE_GIB: Final = 10
MAX_STORAGE_GIB: Final = 64 * 1024
JVM_CORES_MCPU: Final = frozenset({1000, 2000, 4000, 8000})

_ALLOWED_FIELDS: Final = ("cpu", "memory", "storage", "machine_type", "preemptible")
_CPU_PATTERN: Final = re.compile(r"^(?:(\d+)m|(\d+(?:\.\d*)?|\.\d+))$")
# Hail's memory/storage syntax: a number, an optional SI (K, M, ...) or binary (Ki, Mi, ...) prefix, optional B.
_SIZE_PATTERN: Final = re.compile(r"^\+?(\d*\.?\d+)(?:([KMGTP])(i)?)?B?$")
_SIZE_EXPONENT: Final = {"K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_MACHINE_TYPE_PATTERN: Final = re.compile(r"^([a-z][a-z0-9]*)-(standard|highmem|highcpu)-(\d+)$")
_VALID_CPU_EXAMPLES: Final = "use e.g. 0.25, 0.5, 1, 2, 4, 8, 16 (or 250m, 500m)"


class ResourceError(ValueError):
    """A job's `resources` cannot be satisfied; `field` is the spec path, e.g. 'resources.cpu'."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceDefaults:
    """Defaults for fields a job spec leaves out (Hail's HAIL_BATCH_JOB_DEFAULT_*) and the worker size."""

    cpu: str = "1"
    memory: str = "standard"
    storage: str = "0Gi"
    preemptible: bool = True
    worker_cores: int = 16


DEFAULT_RESOURCES: Final = ResourceDefaults()


def pool_name(worker_type: str, preemptible: bool) -> str:
    """The pool a job of this worker type runs in: 'standard', 'highmem-np', ..."""
    return worker_type if preemptible else f"{worker_type}-np"


def memory_per_core_bytes(worker_type: str) -> int:
    return MEMORY_PER_CORE_MIB[worker_type] * MIB


def parse_cpu_mcpu(value: Any) -> int:
    """'250m' → 250, '0.5' → 500, '2' → 2000; must be a power of two times 0.25 core."""
    text = _scalar_text("resources.cpu", value)
    found = _CPU_PATTERN.match(text)
    if found is None:
        raise ResourceError("resources.cpu", f"{value!r} is not a cpu amount; {_VALID_CPU_EXAMPLES}")
    millis, cores = found.groups()
    mcpu_exact = float(millis) if millis is not None else float(cores) * 1000
    mcpu = int(mcpu_exact)
    if mcpu != mcpu_exact or not is_valid_cores_mcpu(mcpu):
        raise ResourceError(
            "resources.cpu", f"{value!r} is not a power of two times 0.25 core; {_VALID_CPU_EXAMPLES}"
        )
    return mcpu


def is_valid_cores_mcpu(mcpu: int) -> bool:
    if mcpu <= 0 or (mcpu * 4) % 1000 != 0:
        return False
    quarter_cores = mcpu * 4 // 1000
    return quarter_cores & (quarter_cores - 1) == 0


def parse_size_bytes(field: str, value: Any) -> int:
    """'1Gi' → 2**30, '1G' → 10**9, '512MiB', '1.5Gi', '1000' (bytes)."""
    text = _scalar_text(field, value)
    found = _SIZE_PATTERN.match(text)
    if found is None:
        raise ResourceError(field, f"{value!r} is not a size; use e.g. 512Mi, 4Gi, 1.5G or a number of bytes")
    number, prefix, binary = found.groups()
    base = 1024 if binary else 1000
    exponent = _SIZE_EXPONENT[prefix] if prefix else 0
    scale: int = base**exponent  # (int ** int is typed Any: a negative exponent would give a float)
    return math.ceil(float(number) * scale)


def parse_storage_gib(value: Any) -> int:
    """'0' → 0, '10Gi' → 10, '100G' → 94; 0 or between 10 GiB and 64 TiB."""
    storage_bytes = parse_size_bytes("resources.storage", value)
    gib = math.ceil(storage_bytes / GIB)
    if gib != 0 and not MIN_NONZERO_STORAGE_GIB <= gib <= MAX_STORAGE_GIB:
        raise ResourceError(
            "resources.storage", f"{value!r} is {gib} GiB; use 0 or between 10Gi and 64Ti (65536Gi)"
        )
    return gib


def resolve_resources(
    raw: Mapping[str, Any] | None,
    defaults: ResourceDefaults = DEFAULT_RESOURCES,
    *,
    jvm: bool = False,
) -> Resources:
    """Apply Hail's rules to a job spec's `resources` (None means all defaults)."""
    spec: Mapping[str, Any] = raw if raw is not None else {}
    if not isinstance(spec, Mapping):
        raise ResourceError("resources", f"must be an object with fields {', '.join(_ALLOWED_FIELDS)}")
    unknown = sorted(set(spec) - set(_ALLOWED_FIELDS))
    if unknown:
        raise ResourceError(
            f"resources.{unknown[0]}", f"unknown field; allowed: {', '.join(_ALLOWED_FIELDS)}"
        )

    preemptible = _parse_preemptible(spec.get("preemptible", defaults.preemptible))
    storage_gib = parse_storage_gib(_or_default(spec.get("storage"), defaults.storage))
    machine_type = spec.get("machine_type")
    if machine_type is not None:
        return _resolve_machine_type(spec, machine_type, storage_gib, preemptible, jvm)

    cores_mcpu = parse_cpu_mcpu(_or_default(spec.get("cpu"), defaults.cpu))
    if jvm and cores_mcpu not in JVM_CORES_MCPU:
        raise ResourceError("resources.cpu", f"JVM jobs need 1, 2, 4 or 8 cores, not {cores_mcpu / 1000:g}")
    memory = _or_default(spec.get("memory"), defaults.memory)
    keyword_type = MEMORY_KEYWORD_WORKER_TYPE.get(memory) if isinstance(memory, str) else None
    if keyword_type is not None:
        if jvm and memory == "lowmem":
            raise ResourceError("resources.memory", "JVM jobs cannot use lowmem; use standard or highmem")
        fitted = _fit_cores(cores_mcpu, 0, keyword_type, defaults.worker_cores)
        if fitted is None:
            raise ResourceError(
                "resources.cpu",
                f"{cores_mcpu / 1000:g} cores do not fit a {defaults.worker_cores}-core worker; "
                f"use at most {defaults.worker_cores}, or machine_type for a bigger VM",
            )
        cores_mcpu, worker_type = fitted, keyword_type
    else:
        memory_bytes = parse_size_bytes("resources.memory", memory)
        worker_type, cores_mcpu = _cheapest_worker_type(
            cores_mcpu, memory_bytes, defaults.worker_cores, memory
        )
    return Resources(
        cores_mcpu=cores_mcpu,
        memory_bytes=cores_mcpu * memory_per_core_bytes(worker_type) // 1000,
        storage_gib=storage_gib,
        preemptible=preemptible,
        worker_type=worker_type,
        machine_type=None,
    )


def _fit_cores(cores_mcpu: int, memory_bytes: int, worker_type: str, worker_cores: int) -> int | None:
    """Cores for the job on this worker type (raised to cover memory, packable), or None if too big."""
    per_core = memory_per_core_bytes(worker_type)
    needed = max(cores_mcpu, math.ceil(memory_bytes * 1000 / per_core), 1)
    power = max(-2, math.ceil(math.log2(needed / 1000)))
    packed = int(2**power * 1000)
    return packed if packed <= worker_cores * 1000 else None


def _cheapest_worker_type(
    cores_mcpu: int, memory_bytes: int, worker_cores: int, requested: Any
) -> tuple[str, int]:
    candidates = []
    for worker_type in WORKER_TYPES:
        cores = _fit_cores(cores_mcpu, memory_bytes, worker_type, worker_cores)
        if cores is not None:
            memory_gib = cores * memory_per_core_bytes(worker_type) / 1000 / GIB
            price = cores / 1000 * _PRICE_PER_CORE_HOUR + memory_gib * _PRICE_PER_GIB_HOUR
            candidates.append((price, WORKER_TYPES.index(worker_type), worker_type, cores))
    if not candidates:
        largest = worker_cores * memory_per_core_bytes("highmem") // GIB
        raise ResourceError(
            "resources.memory" if memory_bytes else "resources.cpu",
            f"cpu {cores_mcpu / 1000:g} with memory {requested!r} does not fit a {worker_cores}-core worker; "
            f"at most {worker_cores} cores and {largest} GiB (highmem); use machine_type for a bigger VM",
        )
    _, _, worker_type, cores = min(candidates)
    return worker_type, cores


def _resolve_machine_type(
    spec: Mapping[str, Any], machine_type: Any, storage_gib: int, preemptible: bool, jvm: bool
) -> Resources:
    if jvm:
        raise ResourceError("resources.machine_type", "JVM jobs cannot use machine_type")
    for excluded in ("cpu", "memory"):
        if spec.get(excluded) is not None:
            raise ResourceError(
                f"resources.{excluded}", "cannot be combined with machine_type; give one or the other"
            )
    found = _MACHINE_TYPE_PATTERN.match(machine_type) if isinstance(machine_type, str) else None
    if found is None:
        raise ResourceError(
            "resources.machine_type",
            f"{machine_type!r} is not a machine type; use <family>-<standard|highmem|highcpu>-<cores>, e.g. n1-highmem-8",
        )
    family, worker_type, cores_text = found.groups()
    cores = int(cores_text)
    if cores <= 0:
        raise ResourceError("resources.machine_type", f"{machine_type!r} has no cores")
    per_core_mib = (N2_MEMORY_PER_CORE_MIB if family != "n1" else MEMORY_PER_CORE_MIB)[worker_type]
    return Resources(
        cores_mcpu=cores * 1000,
        memory_bytes=cores * per_core_mib * MIB,
        storage_gib=storage_gib,
        preemptible=preemptible,
        worker_type=worker_type,
        machine_type=machine_type,
    )


def _parse_preemptible(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ResourceError("resources.preemptible", f"{value!r} is not a boolean; use true or false")
    return value


def _scalar_text(field: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ResourceError(field, f"{value!r} must be a string or a number")
    return value.strip() if isinstance(value, str) else repr(value)


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value
