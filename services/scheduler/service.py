"""The scheduler process: wait for leadership, rebuild the projection, then place jobs as they get ready.

Each leadership term:
1. claim the next epoch (SchedulerLeaderElected) and stamp every placement with it;
2. fold the batch and instance topics to their end (a fresh private view, from the newest snapshot
   of the scheduling state when there is one, projections/scheduling/view_snapshots.py);
3. loop: fold new records; when they may have made work schedulable (a job became ready, an
   attempt ended, an instance activated) or a retry's backoff expired, run one pass and append
   its SJs (and JobCreating + InstanceRequested for job-private jobs) in one batch.

Placements the log has not brought back yet are reserved (capacity taken, job not ready) so a
pass never over-commits an instance; a reservation ends when its SJ comes back — from then on the
fold holds the placement until the resolver's verdict (JobAttemptAccepted / JobAttemptRefused) —
or, if the append was lost, after a timeout.
The health check runs in the same loop.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from events.catalog import Event, InstanceRequested, JobAttemptScheduled, JobBecameReady, JobCreating
from events.core.autoscale import LIMIT_MAX_LIVE, PoolConfig, capacity_limit_reached
from events.core.matching import JobPrivateRequest
from events.envelope import derived_event_id
from events.errors import LogError
from events.log import EventLog
from events.process import metrics
from events.publisher import Publisher
from projections.scheduling.follower import StateFollower
from projections.scheduling.model import JOB_PRIVATE_POOL, Demand
from projections.scheduling.view_snapshots import ViewSnapshots
from services.health.detector import HealthSettings
from services.health.monitor import HealthMonitor
from services.scheduler.explanations import ExplanationWriter
from services.scheduler.leadership import Leadership
from services.scheduler.plan import Plan, Reservation, plan_cycle, private_instance_name

log = logging.getLogger(__name__)

def random_attempt_id() -> str:
    """Hail uses 6 random alphanumerics; attempt ids only need to differ between one job's attempts."""
    return secrets.token_hex(4)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SchedulerSettings:
    pools: tuple[PoolConfig, ...] = ()
    reservation_timeout_ms: int = 30_000  # an SJ not seen back by then was lost: free its capacity
    idle_poll_ms: int = 500  # how long one wait for new records may block (leadership/health checks)
    health: HealthSettings = field(default_factory=HealthSettings)
    health_interval_ms: int = 1_000
    job_private_region: str = "local"
    provider: str = "local"


@dataclass
class SchedulerStats:
    passes: int = 0
    placed: int = 0
    job_private_requested: int = 0
    terms: int = 0


class Scheduler:
    def __init__(self, log_: EventLog, publisher: Publisher, scheduler_id: str,
                 settings: SchedulerSettings | None = None, *, clock: Callable[[], int] = wall_clock_ms,
                 new_attempt_id: Callable[[], str] = random_attempt_id,
                 explanations: ExplanationWriter | None = None, snapshots: ViewSnapshots | None = None) -> None:
        self._log = log_
        self._publisher = publisher
        self._topics = publisher.topics
        self.scheduler_id = scheduler_id
        self.settings = settings or SchedulerSettings()
        self._clock = clock
        self._new_attempt_id = new_attempt_id
        self._explanations = explanations
        self._snapshots = snapshots
        self.leadership = Leadership(log_, publisher, scheduler_id, publisher.codec)
        self.reservations: dict[str, Reservation] = {}  # attempt id -> reservation
        self.follower: StateFollower | None = None
        self.stats = SchedulerStats()
        self.epoch: int | None = None
        self._backoffs: list[int] = []  # heap of retry not_before times still to wake up for
        self._released = False  # a reservation ended without its placement being accepted
        self.leading = asyncio.Event()  # set while this process leads and has caught up

    @property
    def producer(self) -> str:
        return f"scheduler/{self.scheduler_id}"

    async def run(self) -> None:
        """Lead whenever the group makes this process the leader; runs until cancelled."""
        await self.leadership.join()
        try:
            while True:
                await self.leadership.wait_until_leader()
                await self._lead_one_term()
        finally:
            self.leading.clear()
            await self.leadership.close()

    async def _lead_one_term(self) -> None:
        self.stats.terms += 1
        self.epoch = await self.leadership.claim_epoch(self._clock())
        self.reservations.clear()
        self._backoffs.clear()
        follower = StateFollower(self._log, self._topics,
                                 f"{self._topics.prefix}scheduler-view.{self.scheduler_id}.{self.epoch}",
                                 self._publisher.codec, snapshots=self._snapshots)
        follower.listeners.append(self._on_folded)
        self.follower = follower
        await follower.start()
        try:
            await follower.catch_up()
            self._backoffs = follower.state.retry_times()  # a snapshot's retries too, not only those folded now
            heapq.heapify(self._backoffs)
            log.info("scheduler %s (epoch %d) rebuilt its view: %d events, %d ready jobs, %d instances",
                     self.scheduler_id, self.epoch, follower.state.events_applied, follower.state.n_ready(),
                     len(follower.state.instances))
            health = HealthMonitor(self._publisher, follower.state, self._clock, self.settings.health)
            self.leading.set()
            await self._schedule_until_deposed(follower, health)
        finally:
            self.leading.clear()
            await follower.close()

    async def _schedule_until_deposed(self, follower: StateFollower, health: HealthMonitor) -> None:
        next_membership_check = next_health_check = 0
        dirty = True  # the rebuilt view may already hold ready work
        while True:
            now = self._clock()
            if now >= next_membership_check:
                if not await self.leadership.keep_alive():
                    log.warning("scheduler %s lost leadership (epoch %s)", self.scheduler_id, self.epoch)
                    return
                next_membership_check = now + 1000
            if now >= next_health_check:
                await health.check()
                next_health_check = now + self.settings.health_interval_ms
            dirty |= self._expire_reservations(now) or self._released
            self._released = False
            dirty |= self._backoff_expired(now)
            if dirty:
                dirty = False
                await self.run_pass(follower)
            wait_ms = self.settings.idle_poll_ms
            if self._backoffs:
                wait_ms = max(0, min(wait_ms, self._backoffs[0] - self._clock()))
            dirty |= await follower.poll(timeout_ms=wait_ms)

    def _on_folded(self, event: Event, _woke: bool) -> None:
        if isinstance(event, JobAttemptScheduled | JobCreating):
            reservation = self.reservations.pop(event.attempt_id, None)
            if reservation is not None and self.follower is not None \
                    and event.attempt_id not in self.follower.state.attempts and isinstance(event, JobAttemptScheduled):
                self._released = True  # the fold did not hold it (the job was not waiting): capacity is back
        elif isinstance(event, JobBecameReady) and event.not_before is not None:
            heapq.heappush(self._backoffs, event.not_before)

    def _expire_reservations(self, now: int) -> bool:
        stale = [a for a, r in self.reservations.items() if now - r.appended_at > self.settings.reservation_timeout_ms]
        for attempt_id in stale:
            log.warning("placement %s was not seen back in the log; releasing its reservation", attempt_id)
            del self.reservations[attempt_id]
        return bool(stale)

    def _backoff_expired(self, now: int) -> bool:
        """True once a retry's backoff has passed: the one wake-up that no new record brings."""
        expired = False
        while self._backoffs and self._backoffs[0] <= now:
            heapq.heappop(self._backoffs)
            expired = True
        return expired

    async def run_pass(self, follower: StateFollower) -> Plan:
        """One scheduling pass; appends its placements. Public for tests and benchmarks."""
        assert self.epoch is not None, "not leading"
        now = self._clock()
        with metrics.time_scheduling_cycle():
            plan = plan_cycle(follower.state, self.reservations.values(), now, self._full_pools(follower),
                              self.settings.pools)
        metrics.set_ready_jobs(follower.state.ready_by_user())
        self.stats.passes += 1
        events: list[Event] = []
        new: dict[str, Reservation] = {}
        jobs = follower.state.jobs
        for a in plan.assignments:
            attempt_id = self._new_attempt_id()
            job = jobs[(a.batch_id, a.job_id)]
            events.append(JobAttemptScheduled(
                event_id=derived_event_id("JobAttemptScheduled", a.batch_id, a.job_id, attempt_id), occurred_at=now,
                producer=self.producer, batch_id=a.batch_id, job_id=a.job_id, attempt_id=attempt_id,
                instance_name=a.instance_name, scheduler_epoch=self.epoch, user=a.user, cores_mcpu=a.cores_mcpu,
                memory_bytes=a.memory_bytes, storage_gib=a.storage_gib, awaits_verdict=True))
            new[attempt_id] = Reservation(job.key, a.user, job.pool, a.instance_name,
                                          Demand(a.cores_mcpu, a.memory_bytes, a.storage_gib), now)
        for c in plan.creating_placements:
            creating_attempt, d = c.job.attempt_id, c.job.demand  # the attempt JobCreating started
            assert creating_attempt is not None
            events.append(JobAttemptScheduled(
                event_id=derived_event_id("JobAttemptScheduled", c.job.key[0], c.job.key[1], creating_attempt),
                occurred_at=now, producer=self.producer, batch_id=c.job.key[0], job_id=c.job.key[1],
                attempt_id=creating_attempt, instance_name=c.instance.name, scheduler_epoch=self.epoch,
                user=c.job.user, cores_mcpu=d.cores_mcpu, memory_bytes=d.memory_bytes, storage_gib=d.storage_gib,
                awaits_verdict=True))
            new[creating_attempt] = Reservation(c.job.key, c.job.user, c.job.pool, c.instance.name, d, now)
        for r in plan.job_private_requests:
            attempt_id = self._new_attempt_id()
            events.extend(self._job_private_events(r, attempt_id, now))
            new[attempt_id] = Reservation((r.batch_id, r.job_id), r.user, JOB_PRIVATE_POOL, None,
                                          Demand(r.cores_mcpu, r.memory_bytes, r.storage_gib), now)
        if self._explanations is not None:
            self._explanations.record(plan.explanations, (r.job for r in new.values()), now)
        if not events:
            return plan
        if not self.leadership.is_leader():  # deposed since the last check: leave it to the new leader
            return plan
        self.reservations.update(new)  # before appending: the records may come back before publish returns
        try:
            await self._publisher.publish(events)
        except LogError as exc:  # reservations stay until they expire: some events may be stored
            log.error("appending %d placements failed: %s", len(events), exc)
            return plan
        for e in events:
            metrics.observe_event(e)
        self.stats.placed += len(plan.assignments) + len(plan.creating_placements)
        self.stats.job_private_requested += len(plan.job_private_requests)
        return plan

    def _job_private_events(self, r: JobPrivateRequest, attempt_id: str, now: int) -> list[Event]:
        name = private_instance_name((r.batch_id, r.job_id), attempt_id)
        region = r.regions[0] if r.regions else self.settings.job_private_region
        return [
            InstanceRequested(
                event_id=derived_event_id("InstanceRequested", name), occurred_at=now, producer=self.producer,
                instance_name=name, pool=JOB_PRIVATE_POOL, provider=self.settings.provider,
                machine_type=r.machine_type, cores_mcpu=r.cores_mcpu, memory_bytes=r.memory_bytes,
                storage_gib=r.storage_gib, preemptible=r.preemptible, region=region,
                job_private_for=f"{r.batch_id}:{r.job_id}:{attempt_id}"),
            JobCreating(
                event_id=derived_event_id("JobCreating", r.batch_id, r.job_id, attempt_id), occurred_at=now,
                producer=self.producer, batch_id=r.batch_id, job_id=r.job_id, attempt_id=attempt_id,
                instance_name=name, scheduler_epoch=self.epoch or 0, user=r.user, awaits_verdict=True),
        ]

    def _full_pools(self, follower: StateFollower) -> dict[str, tuple[str, int]]:
        """Pools that cannot grow now, with the limit that binds (max_live_instances or max_instances)."""
        live: dict[str, int] = {}
        inactive: dict[str, int] = {}
        for i in follower.state.instances.values():
            if not i.deleted:
                counts = live if i.live else inactive
                counts[i.pool] = counts.get(i.pool, 0) + 1
        out = {}
        for p in self.settings.pools:
            limit = capacity_limit_reached(p, live.get(p.name, 0), inactive.get(p.name, 0))
            if limit is not None:
                out[p.name] = (limit, p.live_limit if limit == LIMIT_MAX_LIVE else p.max_instances)
        return out
