"""The records the scheduling projection keeps in memory: jobs waiting or running, instances, attempts.

Everything is plain mutable data owned by `SchedulingState`; only its fold changes it. Sizes are in
Hail's units: cpu in mCPU, memory in bytes, storage in GiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from events.core.decisions import DecisionKey

JobKey = tuple[int, int]  # (batch_id, job_id)

JOB_PRIVATE_POOL = "job-private"


class JobPhase(Enum):
    PENDING = "pending"  # created; parents not complete yet
    READY = "ready"  # in the ready queue
    CREATING = "creating"  # waiting for its job-private instance
    RUNNING = "running"  # an accepted attempt holds capacity
    FINISHING = "finishing"  # its attempt (still attempt_id) ended; the resolver decides what comes next


class InstanceState(Enum):
    PENDING = "pending"  # requested or created, not yet activated
    ACTIVE = "active"
    INACTIVE = "inactive"  # deactivated: takes no more work; deletion follows


@dataclass(frozen=True, slots=True)
class Demand:
    """What one attempt of a job takes from an instance."""

    cores_mcpu: int
    memory_bytes: int
    storage_gib: int


@dataclass(frozen=True, slots=True)
class Hold:
    """A scheduling decision folded but not yet judged: the job is taken out of the queue (and its
    attempt holds capacity) until the resolver's verdict confirms or refuses it."""

    decision: DecisionKey
    previous: JobPhase  # where a refusal puts the job back: READY, or CREATING for a boot


@dataclass(slots=True)
class JobEntry:
    key: JobKey
    user: str
    pool: str
    demand: Demand
    preemptible: bool
    regions: tuple[str, ...] | None
    machine_type: str | None
    phase: JobPhase = JobPhase.PENDING
    not_before: int | None = None  # retry backoff (ms)
    attempt_id: str | None = None  # the current attempt (accepted, or held awaiting its verdict)
    attempt_ids: tuple[str, ...] = ()  # every attempt accepted (or held) so far: repeats are told by them
    held: Hold | None = None
    # its current attempt was taken where its decision landed: a decision written before verdicts
    # (awaits_verdict false), which no verdict follows (see SchedulingState._take_in_place)
    in_place: bool = False

    # where the job is as far as the verdicts go (a held decision may still be refused): the core's
    # fences on the other events of the job are checked against these
    @property
    def settled_phase(self) -> JobPhase:
        return self.held.previous if self.held is not None else self.phase

    @property
    def settled_attempt(self) -> str | None:
        return None if self.held is not None and self.held.previous is JobPhase.READY else self.attempt_id


@dataclass(slots=True)
class AttemptEntry:
    """An accepted attempt that still holds capacity on its instance."""

    attempt_id: str
    job: JobKey
    instance_name: str
    user: str
    pool: str
    demand: Demand
    held: bool = False  # its decision awaits the verdict: capacity is taken, nothing may end it yet


@dataclass(slots=True)
class InstanceEntry:
    name: str
    pool: str
    region: str
    preemptible: bool
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    state: InstanceState = InstanceState.PENDING
    requested_at: int = 0
    created: bool = False  # the provider accepted it (InstanceCreated)
    provider_id: str | None = None
    machine_type: str | None = None
    job_private_for: str | None = None  # "batch_id:job_id:attempt_id"
    activated_at: int | None = None
    last_heartbeat_at: int | None = None
    deactivated_at: int | None = None
    deactivation_reason: str | None = None  # e.g. `preempted`: health ends its attempts as preemptions
    deleted: bool = False  # the provider deleted it; kept only while attempts on it still need ending
    # when the last attempt left (or activation): the autoscaler's idle clock; None while busy
    idle_since: int | None = None
    free_cores_mcpu: int = 0
    free_memory_bytes: int = 0
    free_storage_gib: int = 0
    attempts: set[str] = field(default_factory=set)

    @property
    def live(self) -> bool:
        return self.state is not InstanceState.INACTIVE

    def last_sign_of_life(self) -> int:
        """The newest time the instance proved it is alive (heartbeat, activation, or request)."""
        return max(t for t in (self.last_heartbeat_at, self.activated_at, self.requested_at) if t is not None)


class JobIdBitmap:
    """A set of (batch_id, job_id) at one bit per job: job ids are dense from 1 within a batch."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits: dict[int, bytearray] = {}

    def add(self, batch_id: int, job_id: int) -> None:
        bits = self._bits.get(batch_id)
        byte = job_id >> 3
        if bits is None:
            bits = self._bits[batch_id] = bytearray(byte + 1)
        elif byte >= len(bits):
            bits.extend(bytes(max(byte + 1 - len(bits), len(bits))))  # grow geometrically
        bits[byte] |= 1 << (job_id & 7)

    def has(self, batch_id: int, job_id: int) -> bool:
        bits = self._bits.get(batch_id)
        byte = job_id >> 3
        return bits is not None and byte < len(bits) and bool(bits[byte] & (1 << (job_id & 7)))
