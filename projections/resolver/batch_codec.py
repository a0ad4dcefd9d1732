"""A batch's lifecycle state (events/core/state.py) as a sealed snapshot, and back.

    blob = encode_batch(state)          # bytes (projections/snapshots/sealed.py)
    state = decode_batch(blob)          # SnapshotOutdated / SnapshotCorrupt rather than a misread

Everything evolve and react read is kept, the dirty marks excepted: a restored batch is looked at
whole once (`mark_all_dirty`), as after a refold. Job specs and retry policies are kept once per
distinct value and shared again through the batch's SpecInterner, so a restored queued job is no
bigger than a folded one.

FORMAT is the fingerprint of the fold: this codec, the lifecycle modules and the shapes of every class
stored; any change to them makes older snapshots outdated (refolded once).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter
from typing import Any

import events.core.backoff
import events.core.decisions
import events.core.evolve
import events.core.interning
import events.core.react
import events.core.state
import events.failures
import projections.resolver.core
from events.catalog import EnvVar, FileCopy, JobSpec, Resources, RetryPolicy
from events.core.evolve import BATCH_LIFECYCLE_EVENTS
from events.core.interning import SpecInterner
from events.core.state import Attempt, BatchState, Completion, Job, JobGroup, RetryOverrides, Update, Verdict
from projections.snapshots.fingerprint import fold_fingerprint
from projections.snapshots.sealed import SnapshotCorrupt, seal, unseal

CODEC_VERSION = 2  # 2: jobs keep their retry policy and what their retries changed

# what is stored of each class, in order; tests check these name every slot but the bookkeeping
UPDATE_FIELDS = Update.__slots__
GROUP_FIELDS = JobGroup.__slots__
ATTEMPT_FIELDS = Attempt.__slots__
COMPLETION_FIELDS = Completion.__slots__
VERDICT_FIELDS = Verdict.__slots__
OVERRIDES_FIELDS = RetryOverrides.__slots__
JOB_FIELDS = ("job_id", "update_id", "job_group_id", "always_run", "n_max_attempts", "parent_ids", "children",
              "n_pending_parents", "parent_failed", "committed", "state", "attempt_ids", "not_before", "exit_code",
              "cause_id", "cause_at")  # then spec, attempt, completion, retry_policy, overrides, encoded apart
BATCH_FIELDS = ("batch_id", "user", "billing_project", "token", "created_at", "deleted", "max_scheduler_epoch",
                "any_group_cancelled", "completed_n_jobs", "n_committed_updates", "cause_id", "cause_at")
BATCH_NOT_STORED = ("dirty_jobs", "dirty_groups", "dirty_batch", "new_verdicts")  # bookkeeping of one step
SPEC_FIELDS = ("process_type", "image", "command", "jar_url", "env", "input_files", "output_files",
               "always_copy_output", "timeout_s", "network", "resources", "regions", "port")
RESOURCES_FIELDS = ("cores_mcpu", "memory_bytes", "storage_gib", "preemptible", "worker_type", "machine_type")
POLICY_FIELDS = ("oom_memory_multiplier", "oom_max_memory_bytes", "max_preemptions", "retry_exit_codes")

FORMAT: bytes = fold_fingerprint(
    CODEC_VERSION,
    [BatchState, Update, JobGroup, Attempt, Completion, Verdict, Job, SpecInterner, JobSpec, Resources, EnvVar,
     FileCopy, RetryPolicy, RetryOverrides, *sorted(BATCH_LIFECYCLE_EVENTS, key=lambda t: t.__name__)],
    [events.core.state, events.core.evolve, events.core.decisions, events.core.interning, events.core.react,
     events.core.backoff, events.failures, projections.resolver.core],
    extra=[f"{name}={','.join(fields)}" for name, fields in (("job", JOB_FIELDS), ("batch", BATCH_FIELDS),
                                                               ("spec", SPEC_FIELDS), ("policy", POLICY_FIELDS))],
)
FORMAT_NAME = FORMAT.hex()

_job_plain = attrgetter(*JOB_FIELDS)
_batch_plain = attrgetter(*BATCH_FIELDS)
_update_plain = attrgetter(*UPDATE_FIELDS)
_group_plain = attrgetter(*GROUP_FIELDS)
_attempt_plain = attrgetter(*ATTEMPT_FIELDS)
_completion_plain = attrgetter(*COMPLETION_FIELDS)
_verdict_plain = attrgetter(*VERDICT_FIELDS)
_resources_plain = attrgetter(*RESOURCES_FIELDS)
_policy_plain = attrgetter(*POLICY_FIELDS)
_overrides_plain = attrgetter(*OVERRIDES_FIELDS)


def encode_batch(state: BatchState) -> bytes:
    return seal(FORMAT, batch_to_plain(state))


def decode_batch(blob: bytes) -> BatchState:
    plain = unseal(FORMAT, blob)
    try:
        return batch_from_plain(plain)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise SnapshotCorrupt(f"a batch snapshot of the right format that does not decode: {exc!r}") from exc


# --- to plain data -------------------------------------------------------------------------------

def batch_to_plain(s: BatchState) -> tuple[Any, ...]:
    spec_index: dict[JobSpec, int] = {}
    specs: list[tuple[Any, ...]] = []
    policy_index: dict[RetryPolicy, int] = {}
    policies: list[tuple[Any, ...]] = []
    jobs = []
    for job in s.jobs.values():
        spec, policy = job.spec, job.retry_policy
        if spec is None:
            ref = -1
        else:
            ref = spec_index.get(spec, -1)
            if ref < 0:
                ref = spec_index[spec] = len(specs)
                specs.append(_spec_plain(spec))
        if policy is None:
            policy_ref = -1
        else:
            policy_ref = policy_index.get(policy, -1)
            if policy_ref < 0:
                policy_ref = policy_index[policy] = len(policies)
                policies.append(_policy_plain(policy))
        attempt, completion, overrides = job.attempt, job.completion, job.overrides
        jobs.append((_job_plain(job), ref, None if attempt is None else _attempt_plain(attempt),
                     None if completion is None else _completion_plain(completion), policy_ref,
                     None if overrides is None else _overrides_plain(overrides)))
    return (_batch_plain(s), [_update_plain(u) for u in s.updates.values()],
            [_group_plain(g) for g in s.groups.values()], sorted(s.rejected_attempts),
            [_verdict_plain(v) for v in s.verdicts_due.values()], specs, policies, jobs)


def _spec_plain(spec: JobSpec) -> tuple[Any, ...]:
    return (spec.process_type, spec.image, spec.command, spec.jar_url, tuple((e.name, e.value) for e in spec.env),
            tuple((f.src, f.dst) for f in spec.input_files), tuple((f.src, f.dst) for f in spec.output_files),
            spec.always_copy_output, spec.timeout_s, spec.network, _resources_plain(spec.resources), spec.regions,
            spec.port)


# --- from plain data -----------------------------------------------------------------------------

def _build(cls: type[Any], fields: Iterable[str], values: Iterable[Any]) -> Any:
    obj = object.__new__(cls)
    for name, value in zip(fields, values, strict=True):
        setattr(obj, name, value)
    return obj


def batch_from_plain(plain: tuple[Any, ...]) -> BatchState:
    batch, updates, groups, rejected, verdicts, specs, policies, jobs = plain
    s: BatchState = _build(BatchState, BATCH_FIELDS, batch)
    s.updates = {u[0]: _build(Update, UPDATE_FIELDS, u) for u in updates}
    s.groups = {g[0]: _build(JobGroup, GROUP_FIELDS, g) for g in groups}
    s.rejected_attempts = {tuple(k) for k in rejected}
    s.verdicts_due = {v[0]: _build(Verdict, VERDICT_FIELDS, v) for v in verdicts}
    s.specs = SpecInterner()
    shared = [s.specs.share(_spec(p)) for p in specs]
    shared_policies = [s.specs.share_policy(_policy(p)) for p in policies]
    s.jobs = {}
    for fields, ref, attempt, completion, policy_ref, overrides in jobs:
        job: Job = _build(Job, JOB_FIELDS, fields)
        job.spec = shared[ref] if ref >= 0 else None
        job.retry_policy = shared_policies[policy_ref] if policy_ref >= 0 else None
        job.overrides = None if overrides is None else _build(RetryOverrides, OVERRIDES_FIELDS, overrides)
        job.attempt = None if attempt is None else _build(Attempt, ATTEMPT_FIELDS, attempt)
        job.completion = None if completion is None else _build(Completion, COMPLETION_FIELDS, completion)
        s.jobs[job.job_id] = job
    s.dirty_jobs, s.dirty_groups, s.dirty_batch, s.new_verdicts = set(), set(), False, []
    return s


def _spec(p: tuple[Any, ...]) -> JobSpec:
    (process_type, image, command, jar_url, env, inputs, outputs, always_copy_output, timeout_s, network,
     resources, regions, port) = p
    return JobSpec(process_type=process_type, image=image, command=command, jar_url=jar_url,
                   env=tuple(EnvVar(name=n, value=v) for n, v in env),
                   input_files=tuple(FileCopy(src=a, dst=b) for a, b in inputs),
                   output_files=tuple(FileCopy(src=a, dst=b) for a, b in outputs),
                   always_copy_output=always_copy_output, timeout_s=timeout_s, network=network,
                   resources=Resources(**dict(zip(RESOURCES_FIELDS, resources, strict=True))), regions=regions,
                   port=port)


def _policy(p: tuple[Any, ...]) -> RetryPolicy:
    return RetryPolicy(**dict(zip(POLICY_FIELDS, p, strict=True)))
