"""Test support for the driver: submit batches as events, a resolver stand-in, and a running stack.

`StandinResolver` runs the real lifecycle core (events.core.evolve + react) over the batch topic,
exactly what projections/resolver does, minus its Postgres offsets and quarantine: enough to
drive the scheduler end to end until the resolver service is wired into these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from events.catalog import (
    BatchCreated,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    Event,
    JobCreated,
    JobSpec,
    Resources,
)
from events.core.evolve import evolve
from events.core.react import react
from events.core.state import BatchState
from events.log import EventLog
from events.publisher import Publisher
from services.providers.base import InstanceSpec, ProviderInstance
from services.simworker import SimulatedWorker, SimulatedWorkerFleet

GIB = 1024**3


def job_spec(cores_mcpu: int = 1000, memory_bytes: int | None = None, storage_gib: int = 0,
             worker_type: str = "standard", preemptible: bool = True, machine_type: str | None = None,
             regions: tuple[str, ...] | None = None) -> JobSpec:
    memory = memory_bytes if memory_bytes is not None else cores_mcpu * 3840 * 1024**2 // 1000
    return JobSpec(process_type="docker", image="ubuntu:24.04", command=("true",), env=(), input_files=(),
                   output_files=(), always_copy_output=False, network="public", regions=regions,
                   resources=Resources(cores_mcpu=cores_mcpu, memory_bytes=memory, storage_gib=storage_gib,
                                       preemptible=preemptible, worker_type=worker_type, machine_type=machine_type))


@dataclass(frozen=True)
class JobDef:
    parents: tuple[int, ...] = ()
    spec: JobSpec | None = None


def batch_events(batch_id: int, user: str, jobs: Sequence[JobDef], now_ms: int) -> list[Event]:
    """BatchCreated, update 1, the jobs (ids 1..n), commit: what the front end appends."""
    p = "test/front"
    out: list[Event] = [
        BatchCreated(event_id=f"bc-{batch_id}", occurred_at=now_ms, producer=p, batch_id=batch_id, user=user,
                     billing_project="test", token=f"t{batch_id}", attributes={}),
        BatchUpdateCreated(event_id=f"bu-{batch_id}", occurred_at=now_ms, producer=p, batch_id=batch_id, update_id=1,
                           token=f"u{batch_id}", n_jobs=len(jobs), n_job_groups=0, start_job_id=1,
                           start_job_group_id=1),
    ]
    for i, job in enumerate(jobs, start=1):
        out.append(JobCreated(event_id=f"jc-{batch_id}-{i}", occurred_at=now_ms, producer=p, batch_id=batch_id,
                              job_id=i, update_id=1, job_group_id=0, parent_ids=job.parents, always_run=False,
                              n_max_attempts=20, user=user, billing_project="test", attributes={},
                              spec=job.spec or job_spec(), spec_json="{}"))
    out.append(BatchUpdateCommitted(event_id=f"bcm-{batch_id}", occurred_at=now_ms, producer=p, batch_id=batch_id,
                                    update_id=1, n_jobs=len(jobs), n_job_groups=0, start_job_id=1,
                                    start_job_group_id=1))
    return out


class BatchWatcher:
    """Counts JobCompleted and BatchCompleted per batch from the batch topic (by fingerprint first)."""

    def __init__(self, log: EventLog, publisher: Publisher) -> None:
        self._log = log
        self._publisher = publisher
        self.n_completed: dict[int, int] = {}
        self.complete: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        topic = self._publisher.topics.batch
        consumer = await self._log.group_consumer(f"{topic}.watcher-{uuid.uuid4().hex[:6]}", [topic])
        codec = self._publisher.codec
        try:
            while True:
                for record in await consumer.getmany(timeout_ms=200, max_records=5000):
                    name = codec.event_name_of(record.value)
                    if name == "JobCompleted":
                        batch_id = codec.decode(record.value).batch_id  # type: ignore[union-attr]
                        self.n_completed[batch_id] = self.n_completed.get(batch_id, 0) + 1
                    elif name == "BatchCompleted":
                        self.complete.add(codec.decode(record.value).batch_id)  # type: ignore[union-attr]
        finally:
            await consumer.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class ResolverProcess:
    """The real resolver (projections.resolver) when it exists, else the stand-in; same start/close."""

    def __init__(self, log: EventLog, publisher: Publisher) -> None:
        self.kind = "stand-in"
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._standin: StandinResolver | None = None
        try:
            from projections.resolver.service import Resolver
        except ImportError:
            self._standin = StandinResolver(log, publisher)
            return
        self.kind = "projections.resolver"
        self._resolver = Resolver(log, publisher.topics, "test/resolver")

    def start(self) -> None:
        if self._standin is not None:
            self._standin.start()
        else:
            self._task = asyncio.create_task(self._resolver.run(self._stop))

    async def close(self) -> None:
        if self._standin is not None:
            await self._standin.close()
        elif self._task is not None:
            self._stop.set()
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


def fold_batches(events: Sequence[Event]) -> dict[int, BatchState]:
    """The lifecycle core's verdict on a finished log: each batch's final state."""
    states: dict[int, BatchState] = {}
    for event in events:
        batch_id = getattr(event, "batch_id", None)
        if batch_id is not None:
            state = evolve(states.get(batch_id), event)
            if state is not None:
                states[batch_id] = state
    return states


class StandinResolver:
    """The lifecycle core over the batch topic; appends what `react` derives (see module doc)."""

    def __init__(self, log: EventLog, publisher: Publisher) -> None:
        self._log = log
        self._publisher = publisher
        self.batches: dict[int, BatchState] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        topic = self._publisher.topics.batch
        consumer = await self._log.group_consumer(f"{topic}.standin-resolver-{uuid.uuid4().hex[:6]}", [topic])
        codec = self._publisher.codec
        try:
            while True:
                touched: set[int] = set()
                for record in await consumer.getmany(timeout_ms=200, max_records=5000):
                    event = codec.decode(record.value)
                    batch_id = getattr(event, "batch_id", None)
                    if batch_id is None:
                        continue
                    state = evolve(self.batches.get(batch_id), event)
                    if state is not None:
                        self.batches[batch_id] = state
                        touched.add(batch_id)
                derived: list[Event] = []
                for batch_id in sorted(touched):
                    state = self.batches[batch_id]
                    derived.extend(react(state, "test/resolver"))
                    state.clear_dirty()
                await self._publisher.publish(derived)
        finally:
            await consumer.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class SimProvider:
    """An InstanceProvider whose instances are simulated workers that boot at once."""

    name = "sim"

    def __init__(self, fleet: SimulatedWorkerFleet) -> None:
        self.fleet = fleet
        self.created: list[str] = []

    def zones_for(self, region: str) -> list[str]:
        return []

    async def create(self, spec):  # type: ignore[no-untyped-def]
        if spec.name in self.fleet.instances:  # idempotent by name, as every provider is
            return ProviderInstance(spec.name, spec.name, "running")
        self.created.append(spec.name)
        await self.fleet.add(SimulatedWorker(name=spec.name, pool=spec.pool, cores_mcpu=spec.cores_mcpu,
                                         memory_bytes=spec.memory_bytes, storage_gib=spec.storage_gib))
        return ProviderInstance(spec.name, spec.name, "running")

    async def delete(self, name, provider_id=None):  # type: ignore[no-untyped-def]
        if name in self.fleet.instances:
            await self.fleet.drain(name, quiet_s=0)

    async def list(self):  # type: ignore[no-untyped-def]
        return [ProviderInstance(name, name, "running") for name in self.fleet.instances]

    async def heal(self) -> list[str]:
        return []

    async def preempted(self) -> list[str]:
        return []

    async def close(self) -> None:
        pass


class HeldBootProvider(SimProvider):
    """Like SimProvider, but a created VM boots (its worker activates) only when the test calls boot()."""

    def __init__(self, fleet: SimulatedWorkerFleet) -> None:
        super().__init__(fleet)
        self.booting: dict[str, InstanceSpec] = {}
        self.deleted: list[str] = []

    async def create(self, spec):  # type: ignore[no-untyped-def]
        if spec.name in self.booting or spec.name in self.fleet.instances:
            return ProviderInstance(spec.name, spec.name, "provisioning" if spec.name in self.booting else "running")
        self.created.append(spec.name)
        self.booting[spec.name] = spec
        return ProviderInstance(spec.name, spec.name, "provisioning")

    async def boot(self, name: str) -> None:
        spec = self.booting.pop(name)
        await self.fleet.add(SimulatedWorker(name=name, pool=spec.pool, cores_mcpu=spec.cores_mcpu,
                                         memory_bytes=spec.memory_bytes, storage_gib=spec.storage_gib))

    async def list(self):  # type: ignore[no-untyped-def]
        return [*await super().list(), *(ProviderInstance(n, n, "provisioning") for n in self.booting)]

    async def delete(self, name, provider_id=None):  # type: ignore[no-untyped-def]
        self.deleted.append(name)
        self.booting.pop(name, None)
        await super().delete(name, provider_id)
