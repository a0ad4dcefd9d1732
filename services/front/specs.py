"""Hail's request specs (batch, update, job group, job) checked and parsed into typed values.

The rules are Hail's `front_end/validate.py`: required fields, types, legacy keys rewritten,
unknown keys refused. Every error names the field (e.g. `bunch[3].resources.cpu`) and what is
allowed. Ids stay update-relative here; `services.front.submission` maps them to absolute ids.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from events.catalog import EnvVar, FileCopy, JobSpec, Resources
from events.core.autoscale import DEFAULT_POOLS, PoolConfig
from events.core.resources import ResourceDefaults, ResourceError, resolve_resources
from events.core.state import ROOT_JOB_GROUP_ID
from events.image_reference import InvalidImageReference, check_image
from services.callback_policy import CallbackPolicy, CallbackRefused
from services.front.errors import InvalidRequest, PayloadTooLarge
from services.front.fields import (
    as_attributes,
    as_bool,
    as_int,
    as_int_list,
    as_number,
    as_str,
    as_str_list,
    reject_unknown,
    require_list,
    require_object,
    require_present,
)
from services.front.job_files import check_job_files
from services.front.pool_check import check_fits_a_pool
from services.front.retry_policy import PolicyFields
from services.front.retry_policy import from_spec as retry_policy_from_spec

DEFAULT_N_MAX_ATTEMPTS: Final = 20
MAX_JOBS_PER_UPDATE: Final = 10_000_000
# Job and job-group specs in one request: Hail's client sends bunches of at most 1,024 specs (and
# under 1 MiB), and so does squall's. A bigger bunch would hold the front's CPU for seconds.
MAX_SPECS_PER_REQUEST: Final = 1024

BATCH_FIELDS: Final = frozenset(("billing_project", "token", "n_jobs", "n_job_groups", "attributes", "callback",
                                 "cancel_after_n_failures", "retry_policy"))
UPDATE_FIELDS: Final = frozenset(("token", "n_jobs", "n_job_groups"))
GROUP_FIELDS: Final = frozenset(("job_group_id", "attributes", "callback", "cancel_after_n_failures",
                       "absolute_parent_id", "in_update_parent_id"))
JOB_FIELDS: Final = frozenset((
    "job_id", "process", "absolute_parent_ids", "in_update_parent_ids", "parent_ids",
    "absolute_job_group_id", "in_update_job_group_id", "always_run", "n_max_attempts", "always_copy_output",
    "attributes", "env", "input_files", "output_files", "cloudfuse", "gcsfuse", "resources", "network",
    "port", "timeout", "secrets", "service_account", "regions", "requester_pays_project", "user_code",
    "mount_tokens", "unconfined", "command", "image", "pvc_size", "retry_policy",
))
NETWORKS: Final = ("public", "private")
_DOCKER_FIELDS: Final = frozenset(("type", "image", "command", "mount_docker_socket"))
_JVM_FIELDS: Final = frozenset(("type", "jar_spec", "command", "profile"))
_JAR_FIELDS: Final = frozenset(("type", "value"))
_ENV_FIELDS: Final = frozenset(("name", "value"))
_COPY_FIELDS: Final = frozenset(("from", "to"))
_SCALARS: Final = (str, int, float, bool, type(None))


@dataclass(frozen=True, slots=True)
class BatchRequest:
    billing_project: str
    token: str
    n_jobs: int
    n_job_groups: int
    attributes: dict[str, str]
    callback: str | None
    cancel_after_n_failures: int | None
    retry_policy: PolicyFields | None = None  # the default for the batch's jobs (services/front/retry_policy.py)


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    token: str
    n_jobs: int
    n_job_groups: int


@dataclass(frozen=True, slots=True)
class GroupRequest:
    job_group_id: int  # update-relative, 1..n
    attributes: dict[str, str]
    callback: str | None
    cancel_after_n_failures: int | None
    absolute_parent_id: int | None
    in_update_parent_id: int | None


@dataclass(frozen=True, slots=True)
class JobRequest:
    job_id: int  # update-relative, 1..n
    absolute_parent_ids: tuple[int, ...]
    in_update_parent_ids: tuple[int, ...]
    absolute_job_group_id: int | None
    in_update_job_group_id: int | None
    always_run: bool
    n_max_attempts: int
    attributes: dict[str, str]
    spec: JobSpec
    spec_json: str
    retry_policy: PolicyFields | None = None  # the job's own fields; its batch's default is merged when planned


@dataclass(frozen=True, slots=True)
class SpecRules:
    """Deployment settings the checks depend on."""

    supported_regions: tuple[str, ...] = ("local",)
    data_locality: str = "refuse"  # inputs outside a job's regions: refuse | warn | off (services/front/locality.py)
    resource_defaults: ResourceDefaults = ResourceDefaults()
    callbacks: CallbackPolicy = CallbackPolicy()  # where callback URLs may point
    pools: tuple[PoolConfig, ...] = DEFAULT_POOLS  # a job no worker of these can hold is refused


def check_bunch_size(field: str, jobs: Any, groups: Any = ()) -> Any:
    """`jobs`, once the request is known to hold at most MAX_SPECS_PER_REQUEST job and job-group specs (413)."""
    n = (len(jobs) if isinstance(jobs, list) else 0) + (len(groups) if isinstance(groups, list) else 0)
    if n > MAX_SPECS_PER_REQUEST:
        raise PayloadTooLarge(f"{field}: a request may hold at most {MAX_SPECS_PER_REQUEST} job and job-group specs, "
                              f"this one holds {n}; send them in bunches of at most {MAX_SPECS_PER_REQUEST} "
                              "(as Hail's client does)")
    return jobs


def parse_batch(body: Any, callbacks: CallbackPolicy = CallbackPolicy()) -> BatchRequest:
    obj = require_object("batch", body)
    reject_unknown("batch", obj, BATCH_FIELDS)
    cancel_after = obj.get("cancel_after_n_failures")
    callback = obj.get("callback")
    attributes = as_attributes("batch.attributes", obj.get("attributes") or {})
    return BatchRequest(
        billing_project=as_str("batch.billing_project", require_present("batch", obj, "billing_project"),
                               nonempty=True, max_len=100),
        token=as_str("batch.token", require_present("batch", obj, "token"), nonempty=True, max_len=100),
        n_jobs=as_int("batch.n_jobs", require_present("batch", obj, "n_jobs"), minimum=0,
                      maximum=MAX_JOBS_PER_UPDATE),
        n_job_groups=as_int("batch.n_job_groups", obj.get("n_job_groups") or 0, minimum=0,
                            maximum=MAX_JOBS_PER_UPDATE),
        attributes=attributes,
        callback=None if callback is None else _callback("batch.callback", callback, callbacks),
        cancel_after_n_failures=None if cancel_after is None
        else as_int("batch.cancel_after_n_failures", cancel_after, minimum=1),
        retry_policy=retry_policy_from_spec("batch", obj, attributes),
    )


def parse_update(body: Any) -> UpdateRequest:
    obj = require_object("update", body)
    reject_unknown("update", obj, UPDATE_FIELDS)
    return UpdateRequest(
        token=as_str("update.token", require_present("update", obj, "token"), nonempty=True, max_len=100),
        n_jobs=as_int("update.n_jobs", require_present("update", obj, "n_jobs"), minimum=0,
                      maximum=MAX_JOBS_PER_UPDATE),
        n_job_groups=as_int("update.n_job_groups", obj.get("n_job_groups") or 0, minimum=0,
                            maximum=MAX_JOBS_PER_UPDATE),
    )


def parse_groups(body: Any, field: str = "job_groups", callbacks: CallbackPolicy = CallbackPolicy()) -> list[GroupRequest]:
    groups = [_parse_group(f"{field}[{i}]", spec, callbacks) for i, spec in enumerate(require_list(field, body))]
    _check_contiguous(field, [g.job_group_id for g in groups], "job_group_id")
    return groups


def _parse_group(field: str, body: Any, callbacks: CallbackPolicy) -> GroupRequest:
    obj = require_object(field, body)
    reject_unknown(field, obj, GROUP_FIELDS)
    group_id = as_int(f"{field}.job_group_id", require_present(field, obj, "job_group_id"), minimum=1)
    absolute = obj.get("absolute_parent_id")
    in_update = obj.get("in_update_parent_id")
    if absolute is not None and in_update is not None:
        raise InvalidRequest(field, "give absolute_parent_id or in_update_parent_id, not both")
    if in_update is not None:
        in_update = as_int(f"{field}.in_update_parent_id", in_update, minimum=0)
        if in_update == ROOT_JOB_GROUP_ID:  # Hail's client names the root of a new batch this way
            in_update, absolute = None, ROOT_JOB_GROUP_ID
        elif in_update >= group_id:
            raise InvalidRequest(f"{field}.in_update_parent_id",
                                 f"must name an earlier group of this update (< {group_id}), not {in_update}")
    if absolute is None and in_update is None:
        absolute = ROOT_JOB_GROUP_ID
    cancel_after = obj.get("cancel_after_n_failures")
    callback = obj.get("callback")
    return GroupRequest(
        job_group_id=group_id,
        attributes=as_attributes(f"{field}.attributes", obj.get("attributes") or {}),
        callback=None if callback is None else _callback(f"{field}.callback", callback, callbacks),
        cancel_after_n_failures=None if cancel_after is None
        else as_int(f"{field}.cancel_after_n_failures", cancel_after, minimum=1),
        absolute_parent_id=None if absolute is None else as_int(f"{field}.absolute_parent_id", absolute, minimum=0),
        in_update_parent_id=in_update,
    )


def parse_jobs(body: Any, rules: SpecRules, field: str = "bunch") -> list[JobRequest]:
    jobs = [parse_job(f"{field}[{i}]", spec, rules) for i, spec in enumerate(require_list(field, body))]
    _check_contiguous(field, [j.job_id for j in jobs], "job_id")
    return jobs


def _callback(field: str, value: Any, callbacks: CallbackPolicy) -> str:
    url = as_str(field, value, max_len=2048)
    try:
        callbacks.check_url(url)
    except CallbackRefused as exc:
        raise InvalidRequest(field, str(exc)) from None
    return url


def _check_contiguous(field: str, ids: Sequence[int], name: str) -> None:
    for i in range(1, len(ids)):
        if ids[i] != ids[i - 1] + 1:
            raise InvalidRequest(f"{field}[{i}].{name}",
                                 f"ids in one request must be contiguous and increasing: {ids[i - 1]} is "
                                 f"followed by {ids[i]}, expected {ids[i - 1] + 1}")


def parse_job(field: str, body: Any, rules: SpecRules) -> JobRequest:
    obj = dict(require_object(field, body))
    reject_unknown(field, obj, JOB_FIELDS)
    _rewrite_legacy(field, obj)
    job_id = as_int(f"{field}.job_id", require_present(field, obj, "job_id"), minimum=1)
    process = require_object(f"{field}.process", require_present(field, obj, "process"))
    process_type = process.get("type")
    jvm = process_type == "jvm"
    try:
        resources = _resources(obj.get("resources"), rules.resource_defaults, jvm)
    except ResourceError as exc:
        raise InvalidRequest(f"{field}.{exc.field}", exc.message) from None
    image, command, jar_url = _parse_process(f"{field}.process", process)

    absolute_parents = as_int_list(f"{field}.absolute_parent_ids", obj.get("absolute_parent_ids") or [], minimum=1)
    in_update_parents = as_int_list(f"{field}.in_update_parent_ids", obj.get("in_update_parent_ids") or [],
                                    minimum=1)
    for i, parent in enumerate(in_update_parents):
        if parent >= job_id:
            raise InvalidRequest(f"{field}.in_update_parent_ids[{i}]",
                                 f"a parent must be an earlier job of this update (< {job_id}), not {parent}")
    absolute_group = obj.get("absolute_job_group_id")
    in_update_group = obj.get("in_update_job_group_id")
    if absolute_group is not None and in_update_group is not None:
        raise InvalidRequest(field, "give absolute_job_group_id or in_update_job_group_id, not both")
    if in_update_group is not None:
        in_update_group = as_int(f"{field}.in_update_job_group_id", in_update_group, minimum=0)
        if in_update_group == ROOT_JOB_GROUP_ID:  # Hail's client names the root of a new batch this way
            in_update_group, absolute_group = None, ROOT_JOB_GROUP_ID
    elif absolute_group is not None:
        absolute_group = as_int(f"{field}.absolute_job_group_id", absolute_group, minimum=0)
    else:
        absolute_group = ROOT_JOB_GROUP_ID

    _refuse_unsupported(field, obj)
    env = _parse_env(f"{field}.env", obj.get("env") or [])
    inputs = _parse_copies(f"{field}.input_files", obj.get("input_files") or [])
    outputs = _parse_copies(f"{field}.output_files", obj.get("output_files") or [])
    if jvm and (inputs or outputs):
        raise InvalidRequest(f"{field}.{'input_files' if inputs else 'output_files'}",
                             "JVM jobs cannot copy files; remove input_files and output_files")
    check_job_files(field, job_id, inputs, outputs, jar_url)
    network = obj.get("network") or "public"
    if network not in NETWORKS:
        raise InvalidRequest(f"{field}.network", f"{network!r} is not allowed; use one of {', '.join(NETWORKS)}")
    timeout = obj.get("timeout")
    if timeout is not None and as_number(f"{field}.timeout", timeout) <= 0:
        raise InvalidRequest(f"{field}.timeout", f"must be a positive number of seconds, not {timeout}")
    port = obj.get("port")
    if port is not None:
        port = as_int(f"{field}.port", port, minimum=1, maximum=65535)
    regions = _parse_regions(f"{field}.regions", obj.get("regions"), rules.supported_regions)
    always_copy = obj.get("always_copy_output")
    for flag in ("mount_tokens", "unconfined"):
        if obj.get(flag) is not None:
            as_bool(f"{field}.{flag}", obj[flag])
    if obj.get("unconfined"):
        raise InvalidRequest(f"{field}.unconfined", "only the ci user may run unconfined jobs; remove it")
    for text in ("user_code", "requester_pays_project"):
        if obj.get(text) is not None:
            as_str(f"{field}.{text}", obj[text])
    attributes = as_attributes(f"{field}.attributes", obj.get("attributes") or {})
    n_max_attempts = obj.get("n_max_attempts")

    spec = JobSpec(
        process_type="jvm" if jvm else "docker",
        image=image,
        command=command,
        jar_url=jar_url,
        env=env,
        input_files=inputs,
        output_files=outputs,
        always_copy_output=True if always_copy is None else as_bool(f"{field}.always_copy_output", always_copy),
        timeout_s=None if timeout is None else float(timeout),
        network=network,
        resources=resources,
        regions=regions,
        port=port,
    )
    check_fits_a_pool(field, resources, rules.pools, regions)
    obj["n_max_attempts"] = DEFAULT_N_MAX_ATTEMPTS if n_max_attempts is None else n_max_attempts
    obj["network"] = network
    return JobRequest(
        job_id=job_id,
        absolute_parent_ids=absolute_parents,
        in_update_parent_ids=in_update_parents,
        absolute_job_group_id=absolute_group,
        in_update_job_group_id=in_update_group,
        always_run=as_bool(f"{field}.always_run", obj["always_run"]) if obj.get("always_run") is not None
        else False,
        n_max_attempts=as_int(f"{field}.n_max_attempts", obj["n_max_attempts"], minimum=1, maximum=1000),
        attributes=attributes,
        spec=spec,
        spec_json=orjson.dumps(obj).decode(),
        retry_policy=retry_policy_from_spec(field, obj, attributes),
    )


def _resources(raw: Any, defaults: ResourceDefaults, jvm: bool) -> Resources:
    """Resolve, memoised: a bunch usually repeats a handful of resource requests a thousand times."""
    if isinstance(raw, dict) and all(isinstance(v, _SCALARS) for v in raw.values()):
        return _resources_cached(tuple(sorted(raw.items())), defaults, jvm)
    return resolve_resources(raw, defaults, jvm=jvm)


@functools.lru_cache(maxsize=4096)
def _resources_cached(items: tuple[tuple[str, Any], ...], defaults: ResourceDefaults, jvm: bool) -> Resources:
    return resolve_resources(dict(items), defaults, jvm=jvm)


def _rewrite_legacy(field: str, obj: dict[str, Any]) -> None:
    """Hail's legacy keys: top-level command/image, parent_ids, gcsfuse, pvc_size."""
    if "command" in obj or "image" in obj:
        if "process" in obj:
            raise InvalidRequest(field, "give process, or the legacy command and image, not both")
        obj["process"] = {"type": "docker", "command": obj.pop("command", None), "image": obj.pop("image", None)}
    if "parent_ids" in obj:
        if "in_update_parent_ids" in obj or "absolute_parent_ids" in obj:
            raise InvalidRequest(f"{field}.parent_ids",
                                 "legacy parent_ids cannot be combined with in_update_parent_ids/absolute_parent_ids")
        obj["in_update_parent_ids"] = obj.pop("parent_ids")
    if "gcsfuse" in obj:
        obj["cloudfuse"] = obj.pop("gcsfuse")
    if "pvc_size" in obj:
        resources = dict(require_object(f"{field}.resources", obj.get("resources") or {}))
        resources["storage"] = obj.pop("pvc_size")
        obj["resources"] = resources


def _parse_process(field: str, process: Mapping[str, Any]) -> tuple[str | None, tuple[str, ...], str | None]:
    kind = process.get("type")
    if kind == "docker":
        reject_unknown(field, process, _DOCKER_FIELDS)
        if process.get("mount_docker_socket"):
            raise InvalidRequest(f"{field}.mount_docker_socket", "is not supported; remove it")
        image = as_str(f"{field}.image", require_present(field, process, "image"), nonempty=True, max_len=1024)
        try:
            check_image(image)  # podman's grammar: never a path, an option or a second argument
        except InvalidImageReference as exc:
            raise InvalidRequest(f"{field}.image", str(exc)) from None
        return image, as_str_list(f"{field}.command", require_present(field, process, "command")), None
    if kind == "jvm":
        reject_unknown(field, process, _JVM_FIELDS)
        jar_spec = require_object(f"{field}.jar_spec", require_present(field, process, "jar_spec"))
        reject_unknown(f"{field}.jar_spec", jar_spec, _JAR_FIELDS)
        if jar_spec.get("type") != "jar_url":
            raise InvalidRequest(f"{field}.jar_spec.type",
                                 f"{jar_spec.get('type')!r} is not supported; use 'jar_url' with the jar's URL")
        jar_url = as_str(f"{field}.jar_spec.value", require_present(f"{field}.jar_spec", jar_spec, "value"),
                         nonempty=True)
        if process.get("profile") is not None:
            as_bool(f"{field}.profile", process["profile"])
        return None, as_str_list(f"{field}.command", require_present(field, process, "command")), jar_url
    raise InvalidRequest(f"{field}.type", f"{kind!r} is not a process type; use 'docker' or 'jvm'")


def _refuse_unsupported(field: str, obj: Mapping[str, Any]) -> None:
    """Hail features squall does not run: refused loudly rather than silently ignored."""
    for key in ("secrets", "cloudfuse"):
        if obj.get(key):
            require_list(f"{field}.{key}", obj[key])
            raise InvalidRequest(f"{field}.{key}", "is not supported by squall; remove it")
    if obj.get("service_account") is not None:
        raise InvalidRequest(f"{field}.service_account", "only the ci and test users may set it; remove it")


def _parse_env(field: str, value: Any) -> tuple[EnvVar, ...]:
    if type(value) is list and all(
            type(e) is dict and len(e) == 2 and type(e.get("name")) is str and type(e.get("value")) is str
            and e["name"] and "\x00" not in e["name"] and "\x00" not in e["value"] for e in value):
        return tuple(EnvVar(name=e["name"], value=e["value"]) for e in value)
    out = []
    for i, item in enumerate(require_list(field, value)):
        entry = require_object(f"{field}[{i}]", item)
        reject_unknown(f"{field}[{i}]", entry, _ENV_FIELDS)
        out.append(EnvVar(name=as_str(f"{field}[{i}].name", require_present(f"{field}[{i}]", entry, "name"),
                                      nonempty=True),
                          value=as_str(f"{field}[{i}].value", require_present(f"{field}[{i}]", entry, "value"))))
    return tuple(out)


def _parse_copies(field: str, value: Any) -> tuple[FileCopy, ...]:
    out = []
    for i, item in enumerate(require_list(field, value)):
        entry = require_object(f"{field}[{i}]", item)
        reject_unknown(f"{field}[{i}]", entry, _COPY_FIELDS)
        out.append(FileCopy(src=as_str(f"{field}[{i}].from", require_present(f"{field}[{i}]", entry, "from"),
                                       nonempty=True),
                            dst=as_str(f"{field}[{i}].to", require_present(f"{field}[{i}]", entry, "to"),
                                       nonempty=True)))
    return tuple(out)


def _parse_regions(field: str, value: Any, supported: Sequence[str]) -> tuple[str, ...] | None:
    if value is None:
        return None
    regions = as_str_list(field, value)
    if not regions:
        raise InvalidRequest(field, f"must not be empty; use a subset of {', '.join(supported)} or leave it out")
    for i, region in enumerate(regions):
        if region not in supported:
            raise InvalidRequest(f"{field}[{i}]", f"{region!r} is not supported; use one of {', '.join(supported)}")
    return regions
