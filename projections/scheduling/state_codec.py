"""The scheduling state (projections/scheduling/state.py) as a sealed snapshot, and back.

    blob = encode_state(state)      # bytes (projections/snapshots/sealed.py)
    state = decode_state(blob)      # SnapshotOutdated / SnapshotCorrupt rather than a misread

Every attribute of SchedulingState is kept; a new one the codec does not know is an error at encode
time (and the fingerprint, FORMAT, changes with the fold's code and classes, so older snapshots are
outdated). Equal demands and strings are shared again on decode, so a restored queued job is no bigger
than a folded one.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import events.core.decisions
import events.core.resources
import projections.scheduling.model
import projections.scheduling.ready_queue
import projections.scheduling.state
from projections.scheduling.model import (
    AttemptEntry,
    Demand,
    Hold,
    InstanceEntry,
    InstanceState,
    JobEntry,
    JobIdBitmap,
    JobPhase,
)
from projections.scheduling.ready_queue import ReadyQueue
from projections.scheduling.state import _HANDLERS, SchedulingState
from projections.snapshots.fingerprint import fold_fingerprint
from projections.snapshots.sealed import SnapshotCorrupt, seal, unseal

CODEC_VERSION = 2  # 2: legacy_epochs (decisions from before verdict events)

STATE_ATTRIBUTES = ("jobs", "instances", "attempts", "ready", "running_cores", "creating", "released_private",
                    "finished", "refused", "legacy_epochs", "events_applied", "early_heartbeats", "_newest_heartbeat",
                    "_prune_early_at")
INSTANCE_FIELDS = tuple(f.name for f in dataclasses.fields(InstanceEntry))
_PHASES = {p.value: p for p in JobPhase}
_INSTANCE_STATES = {s.value: s for s in InstanceState}

FORMAT: bytes = fold_fingerprint(
    CODEC_VERSION,
    [JobEntry, InstanceEntry, AttemptEntry, Demand, Hold, JobIdBitmap, ReadyQueue,
     *sorted(_HANDLERS, key=lambda t: t.__name__)],
    [projections.scheduling.state, projections.scheduling.model, projections.scheduling.ready_queue,
     events.core.decisions, events.core.resources],
    extra=["state=" + ",".join(STATE_ATTRIBUTES), "phases=" + ",".join(_PHASES),
           "instance_states=" + ",".join(_INSTANCE_STATES)],
)
FORMAT_NAME = FORMAT.hex()


def encode_state(state: SchedulingState) -> bytes:
    return seal(FORMAT, state_to_plain(state))


def decode_state(blob: bytes) -> SchedulingState:
    plain = unseal(FORMAT, blob)
    try:
        return state_from_plain(plain)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise SnapshotCorrupt(f"a scheduling snapshot of the right format that does not decode: {exc!r}") from exc


def state_to_plain(s: SchedulingState) -> tuple[Any, ...]:
    unknown = set(vars(s)) - set(STATE_ATTRIBUTES)
    if unknown:
        raise TypeError(f"SchedulingState has attributes the snapshot codec does not store: {sorted(unknown)}")
    jobs = [(j.key, j.user, j.pool, _demand(j.demand), j.preemptible, j.regions, j.machine_type, j.phase.value,
             j.not_before, j.attempt_id, j.attempt_ids,
             None if j.held is None else (j.held.decision, j.held.previous.value)) for j in s.jobs.values()]
    instances = [tuple(i.state.value if name == "state" else getattr(i, name) for name in INSTANCE_FIELDS)
                 for i in s.instances.values()]
    attempts = [(a.attempt_id, a.job, a.instance_name, a.user, a.pool, _demand(a.demand), a.held)
                for a in s.attempts.values()]
    ready = [(key, list(queue), queue.cores_mcpu) for key, queue in s.ready.items()]
    running = {pool: dict(users) for pool, users in s.running_cores.items()}
    finished = {batch: bytes(bits) for batch, bits in s.finished._bits.items()}  # noqa: SLF001
    return (jobs, instances, attempts, ready, running, s.creating, s.released_private, finished, s.refused,
            s.legacy_epochs, s.events_applied, s.early_heartbeats, s._newest_heartbeat, s._prune_early_at)  # noqa: SLF001


def _demand(d: Demand) -> tuple[int, int, int]:
    return (d.cores_mcpu, d.memory_bytes, d.storage_gib)


def state_from_plain(plain: tuple[Any, ...]) -> SchedulingState:
    (jobs, instances, attempts, ready, running, creating, released_private, finished, refused, legacy_epochs,
     events_applied, early_heartbeats, newest_heartbeat, prune_early_at) = plain
    demands: dict[tuple[int, int, int], Demand] = {}

    def demand(d: tuple[int, int, int]) -> Demand:
        one = demands.get(d)
        if one is None:
            one = demands[d] = Demand(*d)
        return one

    s = SchedulingState()
    for (key, user, pool, d, preemptible, regions, machine_type, phase, not_before, attempt_id, attempt_ids,
         held) in jobs:
        key = tuple(key)
        s.jobs[key] = JobEntry(key=key, user=user, pool=pool, demand=demand(d), preemptible=preemptible,
                               regions=regions, machine_type=machine_type, phase=_PHASES[phase],
                               not_before=not_before, attempt_id=attempt_id, attempt_ids=attempt_ids,
                               held=None if held is None else Hold(tuple(held[0]), _PHASES[held[1]]))
    for values in instances:
        fields = dict(zip(INSTANCE_FIELDS, values, strict=True))
        fields["state"] = _INSTANCE_STATES[fields["state"]]
        s.instances[fields["name"]] = InstanceEntry(**fields)
    for attempt_id, job, instance_name, user, pool, d, held in attempts:
        s.attempts[attempt_id] = AttemptEntry(attempt_id, tuple(job), instance_name, user, pool, demand(d), held)
    for key, keys, cores in ready:
        queue = ReadyQueue()
        queue._keys.update(tuple(k) for k in keys)  # noqa: SLF001  # sorted already; one bulk insert
        queue.cores_mcpu = cores
        for k in queue:  # the shapes are the queued jobs' demands, already restored with the jobs
            d = s.jobs[k].demand
            queue.shapes[d] = queue.shapes.get(d, 0) + 1
        s.ready[tuple(key)] = queue
    for pool, users in running.items():
        s.running_cores[pool] = defaultdict(int, users)
    s.creating = set(creating)
    s.released_private = set(released_private)
    for batch, bits in finished.items():
        s.finished._bits[batch] = bytearray(bits)  # noqa: SLF001
    s.refused = set(refused)
    s.legacy_epochs = {int(batch): int(epoch) for batch, epoch in dict(legacy_epochs).items()}
    s.events_applied = events_applied
    s.early_heartbeats = dict(early_heartbeats)
    s._newest_heartbeat = newest_heartbeat  # noqa: SLF001
    s._prune_early_at = prune_early_at  # noqa: SLF001
    return s
