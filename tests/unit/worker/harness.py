"""Run a worker Agent in-process against an EventLog and a runtime, and read what it appended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from events.catalog import Event, JobAttemptCompleted
from events.codec import Codec
from events.log import EventLog
from events.objectstore import InMemoryObjectStore, ObjectStore
from events.publisher import Publisher
from events.topics import Topics
from worker.agent import Agent, AgentSettings
from worker.agent_http import AgentEndpoint
from worker.attempt import AttemptServices, WorkerLimits
from worker.clock import SystemClock
from worker.journal import Journal
from worker.records import AttemptRecords
from worker.runtime import ContainerRuntime
from worker.scratch import ScratchManager
from worker.storage import JobFiles, SharedStore

SYSTEM_BUCKET = "squall-system"
DATA_BUCKET = "user-data"

CODEC = Codec()


async def read_all(log: EventLog, topic: str) -> list[Event]:
    """Every event in the topic now (up to the end offsets read first), partition by partition."""
    out: list[Event] = []
    for p, end in (await log.end_offsets(topic)).items():
        offset = 0
        while offset < end:
            recs = await log.read(topic, p, offset, timeout_ms=1000)
            out += [CODEC.decode(r.value) for r in recs if r.offset < end]
            if not recs:
                raise AssertionError(f"{topic}[{p}]: no records at {offset} though the log ends at {end}")
            offset = recs[-1].offset + 1
    return out


@dataclass
class AgentHarness:
    log: EventLog
    topics: Topics
    home: Path
    runtime: ContainerRuntime
    instance_name: str
    cores: int = 2
    scratch_mode: str = "directory"
    limits: WorkerLimits = field(default_factory=WorkerLimits)
    drain_timeout_s: float = 30.0
    billing_interval_s: float = 60.0
    store: ObjectStore = field(default_factory=InMemoryObjectStore)  # squall's bucket and the users'
    system_bucket: str = SYSTEM_BUCKET
    data_bucket: str = DATA_BUCKET
    flush_interval_s: float = 5.0
    endpoint: AgentEndpoint | None = None
    agent: Agent | None = None
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event | None = None
    journal: Journal | None = None
    records: AttemptRecords | None = None

    @property
    def state_dir(self) -> Path:
        return self.home / "instances" / self.instance_name

    def build(self) -> Agent:
        self.journal = Journal(self.state_dir)
        self.records = AttemptRecords(self.store, self.system_bucket, self.state_dir / "spool", self.flush_interval_s)
        services = AttemptServices(
            instance_name=self.instance_name, runtime=self.runtime,
            scratch=ScratchManager(self.state_dir / "scratch", mode=self.scratch_mode),
            files=JobFiles(SharedStore(self.store)), records=self.records, clock=SystemClock(), limits=self.limits)
        settings = AgentSettings(instance_name=self.instance_name, cores=self.cores, memory_bytes=8 << 30,
                                 storage_gib=10, heartbeat_interval_s=0.2, drain_timeout_s=self.drain_timeout_s,
                                 read_timeout_ms=100, billing_interval_s=self.billing_interval_s)
        self.agent = Agent(settings, self.log, self.topics, services, self.journal, endpoint=self.endpoint)
        return self.agent

    async def create_buckets(self) -> None:
        for bucket in (self.system_bucket, self.data_bucket):
            await self.store.create_bucket(bucket)

    async def start(self) -> Agent:
        await self.create_buckets()
        agent = self.build()
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(agent.run(self.stop))
        return agent

    async def shutdown(self) -> None:
        assert self.stop is not None and self.task is not None
        self.stop.set()
        await asyncio.wait_for(self.task, 60)
        self.journal.close()

    async def crash(self) -> None:
        """Stop without draining or reporting, as a SIGKILL would (the journal is all that survives)."""
        assert self.task is not None
        self.task.cancel()
        for t in list(self.agent._tasks.values()):
            t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await asyncio.gather(*self.agent._tasks.values(), return_exceptions=True)
        self.journal.close()

    async def assign(self, *events: Event) -> None:
        await Publisher(self.log, self.topics, CODEC).publish(list(events))

    async def completions(self) -> list[JobAttemptCompleted]:
        return [e for e in await read_all(self.log, self.topics.batch) if isinstance(e, JobAttemptCompleted)]

    async def wait_for(self, predicate: Callable[[list[Event]], bool], topic: str | None = None,
                       timeout_s: float = 30.0) -> list[Event]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            events = await read_all(self.log, topic or self.topics.batch)
            if predicate(events):
                return events
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; events so far: {[type(e).__name__ for e in events]}")
            await asyncio.sleep(0.05)


def mjcs(events: list[Event]) -> list[JobAttemptCompleted]:
    return [e for e in events if isinstance(e, JobAttemptCompleted)]
