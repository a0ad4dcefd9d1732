"""The worker agent: announce, heartbeat, take assignments from the log, run them, report them.

Lifecycle (`Agent.run(stop)`):
1. reconcile from the journal (worker/journal.py): re-send decided MJCs, re-attach attempts whose
   main container still exists, report the others as Error worker_crashed, re-queue attempts
   that were assigned but never started. No attempt is ever started twice.
2. start the agent's HTTP endpoint (live logs, worker/agent_http.py) and put its fresh secret in
   squall's bucket; append InstanceActivated with the instance's resources and the endpoint's URL;
   heartbeat every `heartbeat_interval_s` (each beat also retries shipping records the store refused);
   every `billing_interval_s`, report the attempts it runs, per batch, for billing (events/running_reports.py).
3. read ONLY partition_for(instance_name) of the worker-assignments topic, from the offset the
   journal holds, keeping only this instance's entries. AttemptAssigned runs when its mCPU fit
   (FIFO weighted semaphore over cores x 1000); AttemptKillRequested kills it (Cancelled, killed).
4. per attempt: journal "started", append MJS, run (worker/attempt.py), journal the MJC, write
   status.json and ship what is left of its logs/usage/status to squall's bucket (worker/records.py),
   append the MJC, journal "reported", remove containers and scratch (and the spool once shipped).
5. when `stop` is set (SIGTERM): take no more work, give running attempts `drain_timeout_s`,
   kill the rest (reported Error instance_lost: retried elsewhere), append InstanceDeactivated.
Event ids of MJS/MJC are derived from the attempt, so a re-send is the same event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from events import failures
from events.catalog import (
    AttemptAssigned,
    AttemptKillRequested,
    InstanceActivated,
    InstanceDeactivated,
    InstanceHeartbeat,
    JobAttemptCompleted,
    JobAttemptStarted,
)
from events.codec import Codec
from events.envelope import derived_event_id
from events.errors import DecodeError
from events.log import EventLog, partition_for
from events.objectstore import ObjectStoreError
from events.objectstore.layout import agent_secret_key
from events.process import metrics
from events.publisher import Publisher
from events.running_reports import DEFAULT_INTERVAL_S, running_reports
from events.topics import Topics
from worker.agent_http import AgentEndpoint
from worker.attempt import Attempt, AttemptOutcome, AttemptServices
from worker.capacity import WeightedSemaphore
from worker.journal import AttemptRecord, Journal, attempt_key, key_of
from worker.records import AttemptIds
from worker.runtime import LABEL_ATTEMPT
from worker.status import status_document

log = logging.getLogger("squall.worker")

PUBLISH_BACKOFF_START_S = 0.1
PUBLISH_BACKOFF_MAX_S = 30.0


@dataclass(frozen=True)
class AgentSettings:
    instance_name: str
    cores: int
    memory_bytes: int
    storage_gib: int
    pool: str = "standard"
    region: str = "local"
    preemptible: bool = False
    heartbeat_interval_s: float = 5.0
    billing_interval_s: float = DEFAULT_INTERVAL_S
    drain_timeout_s: float = 60.0
    read_timeout_ms: int = 500
    agent_version: str | None = None

    @property
    def producer(self) -> str:
        # no pid: an event re-sent after a restart must be identical to the first send
        return f"worker/{self.instance_name}"


# engine states of a container that exists but whose process has not been started yet
NOT_YET_STARTED = frozenset({"created", "configured", "initialized"})


def started_event(a: AttemptAssigned, started_at: int, producer: str) -> JobAttemptStarted:
    return JobAttemptStarted(
        event_id=derived_event_id("JobAttemptStarted", a.batch_id, a.job_id, a.attempt_id),
        occurred_at=started_at, producer=producer, causation_id=a.event_id, batch_id=a.batch_id,
        job_id=a.job_id, attempt_id=a.attempt_id, instance_name=a.instance_name, started_at=started_at)


def completed_event(a: AttemptAssigned, o: AttemptOutcome, producer: str) -> JobAttemptCompleted:
    return JobAttemptCompleted(
        event_id=derived_event_id("JobAttemptCompleted", a.batch_id, a.job_id, a.attempt_id),
        occurred_at=o.ended_at, producer=producer, causation_id=a.event_id, batch_id=a.batch_id,
        job_id=a.job_id, attempt_id=a.attempt_id, instance_name=a.instance_name, outcome=o.outcome,
        exit_code=o.exit_code, failure_cause=o.failure_cause, error=o.error, out_of_memory=o.out_of_memory,
        started_at=o.started_at, ended_at=o.ended_at, steps=o.step_timings(), resource_usage=o.resource_usage)


def unstarted_outcome(started_at: int | None, now: int, outcome: str, cause: str, error: str) -> AttemptOutcome:
    return AttemptOutcome(outcome=outcome, failure_cause=cause, error=error, exit_code=None, out_of_memory=False,
                          started_at=started_at if started_at is not None else now, ended_at=now, steps=[],
                          resource_usage=None)


class Agent:
    def __init__(self, settings: AgentSettings, log_: EventLog, topics: Topics, services: AttemptServices,
                 journal: Journal, codec: Codec | None = None, endpoint: AgentEndpoint | None = None) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.log = log_
        self.topics = topics
        self.services = services
        self.journal = journal
        self.codec = codec or Codec()
        self.publisher = Publisher(log_, topics, self.codec)
        self.clock = services.clock
        self.capacity = WeightedSemaphore(settings.cores * 1000)
        self.attempts: dict[str, Attempt] = {}  # accepted, not yet reported
        self.running: set[str] = set()  # holding cores (their main step may be running)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._drained: set[str] = set()  # killed by the drain, not by a kill request
        self._draining = False
        self._stopping = asyncio.Event()
        self._unshipped: dict[str, AttemptRecord] = {}  # completed, but the store refused some records
        self._started: set[str] = set()  # running attempts whose MJS is in the log (billing reports them)

    # lifecycle ---------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        if self.services.jvm is not None:
            await self.services.jvm.remove_stale()  # their jobs are reported worker_crashed below
        await self.reconcile()
        agent_url = await self._start_endpoint(stop)
        await self._publish_forever([self._activated(agent_url)])
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        billing = asyncio.create_task(self._billing_loop())
        try:
            await self._read_loop(stop)
        finally:
            await self._drain()
            if self.services.jvm is not None:
                await self.services.jvm.close()
            heartbeat.cancel()
            billing.cancel()
            await asyncio.gather(heartbeat, billing, return_exceptions=True)
            await self._publish_forever([InstanceDeactivated(
                event_id=self.clock.new_id(), occurred_at=self.clock.now_ms(), producer=self.settings.producer,
                instance_name=self.settings.instance_name, reason="drained")])
            if self.endpoint is not None:
                await self.endpoint.stop()

    async def _start_endpoint(self, stop: asyncio.Event) -> str | None:
        """Serve live logs; the secret goes to squall's bucket first, so the front end can use it at once."""
        if self.endpoint is None:
            return None
        records = self.services.records
        delay = PUBLISH_BACKOFF_START_S
        while not stop.is_set():
            try:
                await records.store.put(records.bucket, agent_secret_key(self.settings.instance_name),
                                        self.endpoint.secret.encode(), "text/plain")
                break
            except ObjectStoreError as exc:
                log.warning("storing the agent's secret failed, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(PUBLISH_BACKOFF_MAX_S, delay * 2)
        return await self.endpoint.start()

    def _activated(self, agent_url: str | None) -> InstanceActivated:
        s = self.settings
        return InstanceActivated(
            event_id=self.clock.new_id(), occurred_at=self.clock.now_ms(), producer=s.producer,
            instance_name=s.instance_name, pool=s.pool, cores_mcpu=s.cores * 1000, memory_bytes=s.memory_bytes,
            storage_gib=s.storage_gib, region=s.region, preemptible=s.preemptible, agent_version=s.agent_version,
            agent_url=agent_url)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            await self._retry_shipping()
            running = sorted(self.attempts[k].a.attempt_id for k in self.running if k in self.attempts)
            try:
                await self.publisher.publish([InstanceHeartbeat(
                    event_id=self.clock.new_id(), occurred_at=self.clock.now_ms(), producer=self.settings.producer,
                    instance_name=self.settings.instance_name, running_attempt_ids=tuple(running))])
            except Exception:  # a missed heartbeat is retried by the next one
                log.warning("heartbeat failed", exc_info=True)

    async def _billing_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.billing_interval_s)
            started = [self.attempts[k].a for k in sorted(self._started) if k in self.attempts]
            if not started:
                continue
            try:
                await self.publisher.publish(running_reports(self.settings.instance_name, started,
                                                             self.clock.now_ms(), self.settings.producer))
            except Exception:  # the next report bills up to its own time anyway
                log.warning("billing report failed", exc_info=True)

    async def _read_loop(self, stop: asyncio.Event) -> None:
        topic = self.topics.assignment
        partition = partition_for(self.settings.instance_name.encode(), await self.log.partitions(topic))
        stop_wait = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                read = asyncio.create_task(self.log.read(topic, partition, self.journal.next_offset,
                                                         max_records=1000, timeout_ms=self.settings.read_timeout_ms))
                await asyncio.wait({read, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not read.done():
                    read.cancel()
                    await asyncio.gather(read, return_exceptions=True)
                    break
                self._accept(read.result())
        finally:
            stop_wait.cancel()

    def _accept(self, records: list) -> None:  # list[events.log.Record]
        if not records:
            return
        assigned: list[tuple[int, AttemptAssigned]] = []
        kills: list[str] = []
        for rec in records:
            try:
                event = self.codec.decode(rec.value)
            except DecodeError as exc:
                log.error("skipping undecodable assignment record at offset %d: %s", rec.offset, exc)
                continue
            if getattr(event, "instance_name", None) != self.settings.instance_name:
                continue  # another instance hashed to this partition
            if isinstance(event, AttemptAssigned):
                assigned.append((rec.offset, event))
            elif isinstance(event, AttemptKillRequested):
                kills.append(attempt_key(event.batch_id, event.job_id, event.attempt_id))
        known_before = set(self.journal.attempts) | self.journal.done
        self.journal.record_read(assigned, kills, records[-1].offset + 1)
        for _, a in assigned:
            if key_of(a) not in known_before and key_of(a) not in self.attempts:
                self._spawn(self.journal.attempts[key_of(a)])
        for k in kills:
            if k in self.attempts:
                self.attempts[k].kill()

    # attempts ----------------------------------------------------------------------------------
    def _spawn(self, record: AttemptRecord, existing_main: str | None = None) -> None:
        attempt = Attempt(record.assignment, self.services)
        k = key_of(record.assignment)
        if record.kill_requested:
            attempt.kill()
        self.attempts[k] = attempt
        self._tasks[k] = asyncio.create_task(self._execute(record, attempt, existing_main), name=f"attempt-{k}")

    async def _execute(self, record: AttemptRecord, attempt: Attempt, existing_main: str | None) -> None:
        a = record.assignment
        k = key_of(a)
        mcpu = min(max(a.cores_mcpu, 1), self.capacity.capacity)
        try:
            if not await self.capacity.acquire(mcpu, cancel=attempt.killed):
                outcome = unstarted_outcome(record.started_at, self.clock.now_ms(), "Cancelled", failures.KILLED,
                                            "killed before it started")
            else:
                self.running.add(k)
                try:
                    outcome = await self._run_acquired(record, attempt, existing_main)
                finally:
                    self.running.discard(k)
                    self.capacity.release(mcpu)
            if k in self._drained and outcome.outcome == "Cancelled":
                outcome.outcome, outcome.failure_cause = "Error", failures.INSTANCE_LOST
                outcome.error = "the worker shut down before the attempt finished"
            await self._complete(record, attempt, outcome)
        except Exception as exc:  # a bug or an engine failure must still end the attempt visibly
            log.exception("attempt %s failed inside the worker", k)
            if record.completed is None:
                outcome = unstarted_outcome(record.started_at, self.clock.now_ms(), "Error",
                                            failures.INTERNAL_ERROR, f"worker error: {exc}")
                await self._complete(record, attempt, outcome)
        finally:
            self.attempts.pop(k, None)
            self._tasks.pop(k, None)

    async def _run_acquired(self, record: AttemptRecord, attempt: Attempt, existing_main: str | None) -> AttemptOutcome:
        a, k = record.assignment, key_of(record.assignment)
        if self._draining:
            return unstarted_outcome(None, self.clock.now_ms(), "Error", failures.INSTANCE_LOST,
                                     "the worker was draining and did not start the attempt")
        if record.started_at is None:
            self.journal.started(k, self.clock.now_ms())  # before any container exists
        started_at = record.started_at or self.clock.now_ms()
        mjs = asyncio.create_task(self._publish_forever([started_event(a, started_at, self.settings.producer)]))
        mjs.add_done_callback(lambda done: self._started.add(k) if not done.cancelled() and done.result() else None)
        try:
            outcome = await attempt.run(started_at, existing_main_container=existing_main)
        finally:
            await mjs  # MJS precedes MJC in the job's partition
            self._started.discard(k)  # ended: its MJC bills it start to end
        return outcome

    async def _complete(self, record: AttemptRecord, attempt: Attempt | None, outcome: AttemptOutcome) -> None:
        a, k = record.assignment, key_of(record.assignment)
        mjc = completed_event(a, outcome, self.settings.producer)
        self.journal.completed(k, mjc)
        ids = AttemptIds(a.batch_id, a.job_id, a.attempt_id)
        try:
            await self.services.records.write_status(ids, status_document(a, outcome, self.settings.region))
            # before the MJC: a job the API shows complete has its logs in the store (unless it is down)
            await self.services.records.finish(ids)
        except Exception:
            log.warning("writing the records of %s failed; retried", k, exc_info=True)
        await self._report(record)
        await self._cleanup(record, attempt)

    async def _report(self, record: AttemptRecord) -> None:
        assert record.completed is not None
        if await self._publish_forever([record.completed]):
            self.journal.reported(key_of(record.assignment))

    async def _cleanup(self, record: AttemptRecord, attempt: Attempt | None) -> None:
        attempt = attempt or Attempt(record.assignment, self.services)
        try:
            await attempt.cleanup()
        except Exception:
            log.warning("cleaning up %s failed; retried at the next start", key_of(record.assignment),
                        exc_info=True)
            return
        if await self._ship(record):
            self.journal.cleaned(key_of(record.assignment))
        else:  # the spool stays until the store takes it (every heartbeat, and after a restart)
            self._unshipped[key_of(record.assignment)] = record

    async def _ship(self, record: AttemptRecord) -> bool:
        a = record.assignment
        ids = AttemptIds(a.batch_id, a.job_id, a.attempt_id)
        try:
            shipped = await self.services.records.finish(ids)
        except Exception:
            log.warning("shipping the records of %s failed", key_of(a), exc_info=True)
            return False
        if shipped:
            self.services.records.discard(ids)
        return shipped

    async def _retry_shipping(self) -> None:
        for k, record in list(self._unshipped.items()):
            if await self._ship(record):
                del self._unshipped[k]
                self.journal.cleaned(k)
            else:
                break  # the store is still refusing: try again at the next beat

    async def _publish_forever(self, events: list) -> bool:
        """Retry until appended (Hail retries MJC forever); False only if the agent is stopping for good."""
        delay = PUBLISH_BACKOFF_START_S
        while True:
            try:
                await self.publisher.publish(events)
                for e in events:
                    metrics.observe_event(e)  # MJS and MJC counters, job runtimes; others are ignored
                return True
            except Exception as exc:
                if self._stopping.is_set():
                    log.error("giving up appending %s at shutdown (the journal re-sends it): %s",
                              [e.SCHEMA_NAME for e in events], exc)
                    return False
                log.warning("appending %s failed, retrying in %.1f s: %s", [e.SCHEMA_NAME for e in events],
                            delay, exc)
                await asyncio.sleep(delay)
                delay = min(PUBLISH_BACKOFF_MAX_S, delay * 2)

    # restart and shutdown ----------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Finish what the journal says was in flight when the previous agent stopped."""
        await self._ship_orphaned_spools()
        for record in list(self.journal.attempts.values()):
            a = record.assignment
            if record.completed is not None:
                if not record.reported:
                    await self._report(record)
                if not record.cleaned:
                    await self._cleanup(record, None)
                continue
            if record.started_at is None:
                self._spawn(record)  # never started: running it now is its first run
                continue
            containers = await self.services.runtime.list_by_label(LABEL_ATTEMPT, key_of(a))
            main = next((c for c in containers if c.name.endswith("-main")), None)
            if main is not None:
                if main.state in NOT_YET_STARTED:
                    # the previous agent died between create and start, and its start request may
                    # still be in flight in the engine: starting it here (a no-op if it already
                    # runs) is the only way it runs exactly once; reporting worker_crashed would
                    # make the core retry while this container may start anyway
                    await self.services.runtime.start(main.id)
                log.info("re-attaching attempt %s to its container %s", key_of(a), main.id[:12])
                self._spawn(record, existing_main=main.id)
            else:
                outcome = unstarted_outcome(record.started_at, self.clock.now_ms(), "Error", failures.WORKER_CRASHED,
                                            "the worker restarted while the attempt was running and its "
                                            "container was gone")
                await self._complete(record, None, outcome)

    async def _ship_orphaned_spools(self) -> None:
        """Spools of attempts the journal has forgotten (finished before a compaction): ship and drop them."""
        records = self.services.records
        live = set(self.journal.attempts)
        for ids in records.spooled_attempts():
            if attempt_key(ids.batch_id, ids.job_id, ids.attempt_id) in live:
                continue
            try:
                if await records.finish(ids):
                    records.discard(ids)
            except Exception:
                log.warning("shipping the spool of %s failed; retried at the next start", ids, exc_info=True)

    async def _drain(self) -> None:
        self._draining = True
        for k, attempt in list(self.attempts.items()):
            if k not in self.running:  # still waiting for cores: hand it back now, it never started
                self._drained.add(k)
                attempt.kill()
        pending = list(self._tasks.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=self.settings.drain_timeout_s)
            if still:
                for k, attempt in list(self.attempts.items()):
                    self._drained.add(k)
                    attempt.kill()
                await asyncio.wait(still, timeout=30)
        self._stopping.set()
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
