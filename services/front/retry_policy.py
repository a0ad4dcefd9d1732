"""Retry policies as users give them: the job spec's `retry_policy`, the batch spec's (a default for its
jobs), or, for Hail's client, which sends neither, the attribute `squall.retry_policy` holding the same
object as JSON, on a job or on the batch.

    {"oom_memory_multiplier": 2, "oom_max_memory": "8Gi",   # after an OOM kill: memory x 2, up to 8 GiB
     "max_preemptions": 2,                                   # then non-preemptible instances
     "retry_exit_codes": [75, 143]}                          # transient exit codes, retried with backoff

Two steps, so every error names its field: `parse_fields` checks each field on its own when the spec is
parsed; `effective_policy` merges a job's fields over its batch's default (a job's field wins, even
null, which removes the default's) and checks the whole against the job's resources and the pools,
when the job is planned. What the core does with the result: events/core/retries.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from events.catalog import Resources, RetryPolicy
from events.core.autoscale import PoolConfig
from events.core.pool_fit import misfit
from events.core.resources import GIB, MIB, ResourceError, parse_size_bytes
from services.front.errors import InvalidRequest
from services.front.fields import as_int, as_number, reject_unknown, require_list, require_object

ATTRIBUTE: Final = "squall.retry_policy"
FIELDS: Final = ("oom_memory_multiplier", "oom_max_memory", "max_preemptions", "retry_exit_codes")
MAX_PREEMPTIONS_LIMIT: Final = 1000  # as n_max_attempts: more would never be reached

PolicyFields = dict[str, Any]
"""The fields a spec gave, checked and normalised: oom_memory_multiplier (float),
oom_max_memory_bytes (int), max_preemptions (int), retry_exit_codes (list of int); a field given
as null is present with None."""


def parse_fields(field: str, value: Any) -> PolicyFields:
    obj = require_object(field, value)
    reject_unknown(field, obj, FIELDS)
    out: PolicyFields = {}
    if "oom_memory_multiplier" in obj:
        multiplier = obj["oom_memory_multiplier"]
        if multiplier is not None:
            multiplier = as_number(f"{field}.oom_memory_multiplier", multiplier)
            if not (math.isfinite(multiplier) and multiplier > 1):
                raise InvalidRequest(f"{field}.oom_memory_multiplier",
                                     f"must be a number greater than 1 (e.g. 2 doubles the memory), not {multiplier}")
        out["oom_memory_multiplier"] = multiplier
    if "oom_max_memory" in obj:
        cap = obj["oom_max_memory"]
        if cap is not None:
            try:
                cap = parse_size_bytes(f"{field}.oom_max_memory", cap)
            except ResourceError as exc:
                raise InvalidRequest(exc.field, exc.message) from None
        out["oom_max_memory_bytes"] = cap
    if "max_preemptions" in obj:
        limit = obj["max_preemptions"]
        if limit is not None:
            limit = as_int(f"{field}.max_preemptions", limit, minimum=0, maximum=MAX_PREEMPTIONS_LIMIT)
            if limit == 0:
                raise InvalidRequest(f"{field}.max_preemptions", "must be at least 1; to never run on a preemptible "
                                                                 "instance, set resources.preemptible to false")
        out["max_preemptions"] = limit
    if "retry_exit_codes" in obj:
        codes = obj["retry_exit_codes"]
        if codes is not None:
            codes = sorted({as_int(f"{field}.retry_exit_codes[{i}]", code, minimum=1, maximum=255)
                            for i, code in enumerate(require_list(f"{field}.retry_exit_codes", codes))})
        out["retry_exit_codes"] = codes
    return out


def from_spec(field: str, spec: Mapping[str, Any], attributes: Mapping[str, str]) -> PolicyFields | None:
    """The policy fields a job or batch spec gives: its `retry_policy`, or its `squall.retry_policy`
    attribute (JSON), not both; None if neither."""
    given = spec.get("retry_policy")
    attribute = attributes.get(ATTRIBUTE)
    if given is not None and attribute is not None:
        raise InvalidRequest(f"{field}.retry_policy", f"give retry_policy or the attribute {ATTRIBUTE}, not both")
    if given is not None:
        return parse_fields(f"{field}.retry_policy", given)
    if attribute is None:
        return None
    try:
        decoded = json.loads(attribute)
    except ValueError as exc:
        raise InvalidRequest(f"{field}.attributes.{ATTRIBUTE}",
                             f"must be a JSON object such as {{\"oom_memory_multiplier\": 2, \"oom_max_memory\": "
                             f"\"8Gi\"}}: {exc}") from None
    return parse_fields(f"{field}.attributes.{ATTRIBUTE}", decoded)


def effective_policy(field: str, batch_default: PolicyFields | None, own: PolicyFields | None,
                     resources: Resources, pools: Sequence[PoolConfig]) -> RetryPolicy | None:
    """The job's policy (its own fields over the batch's), checked against what the job asks for and
    the pools; None when no rule is left."""
    merged = {**(batch_default or {}), **(own or {})}
    multiplier = merged.get("oom_memory_multiplier")
    cap = merged.get("oom_max_memory_bytes")
    max_preemptions = merged.get("max_preemptions")
    codes = tuple(merged.get("retry_exit_codes") or ())
    if multiplier is None and cap is None and max_preemptions is None and not codes:
        return None

    def where(name: str) -> str:
        return f"{field}.retry_policy.{name}" + ("" if own and name in own else " (the batch's retry_policy)")

    if multiplier is not None or cap is not None:
        _check_oom(where, multiplier, cap, resources, pools)
    if max_preemptions is not None and resources.preemptible and not resources.machine_type:
        memory = cap if cap is not None else resources.memory_bytes
        problem = misfit(resources.cores_mcpu, memory, resources.storage_gib, resources.worker_type, False, pools)
        if problem is not None:
            raise InvalidRequest(where("max_preemptions"), "after its preemptions the job runs non-preemptible, "
                                                           f"but {problem}")
    return RetryPolicy(oom_memory_multiplier=multiplier, oom_max_memory_bytes=cap, max_preemptions=max_preemptions,
                       retry_exit_codes=codes)


def _check_oom(where: Any, multiplier: float | None, cap: int | None, resources: Resources,
               pools: Sequence[PoolConfig]) -> None:
    if multiplier is None:
        raise InvalidRequest(where("oom_memory_multiplier"), "is needed with oom_max_memory (e.g. 2 doubles the "
                                                             "memory after each out-of-memory kill)")
    if cap is None:
        raise InvalidRequest(where("oom_max_memory"), "is needed with oom_memory_multiplier: the most memory a "
                                                      "retry may ask for (e.g. 16Gi)")
    if resources.machine_type:
        raise InvalidRequest(where("oom_memory_multiplier"), "cannot be used with resources.machine_type: a "
                                                             "job-private machine's memory is fixed")
    if cap <= resources.memory_bytes:
        raise InvalidRequest(where("oom_max_memory"), f"{_size(cap)} is not more than the {_size(resources.memory_bytes)}"
                                                      " the job gets already: no retry could get more")
    problem = misfit(resources.cores_mcpu, cap, resources.storage_gib, resources.worker_type, resources.preemptible,
                     pools)
    if problem is not None:
        raise InvalidRequest(where("oom_max_memory"), f"a retry at {_size(cap)} could never run: {problem}")


def _size(n: int) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def as_event_policy(fields: PolicyFields | None) -> RetryPolicy | None:
    """A batch's default as BatchCreated records it (its fields as given, not checked against any job)."""
    if not fields:
        return None
    return RetryPolicy(oom_memory_multiplier=fields.get("oom_memory_multiplier"),
                       oom_max_memory_bytes=fields.get("oom_max_memory_bytes"),
                       max_preemptions=fields.get("max_preemptions"),
                       retry_exit_codes=tuple(fields.get("retry_exit_codes") or ()))
