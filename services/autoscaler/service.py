"""The autoscaler: keep each pool's fleet the size its ready work needs, through an InstanceProvider.

Each loop (every `loop_period_s`, on its own folded view of the log):
1. grow: the pure `events.core.autoscale.decide` compares each pool's look-ahead demand (Hail's
   window, `events.core.lookahead`) with free and booting capacity, tops the pool up to its
   minimum with standing workers, and keeps it within max_live_instances / max_instances; each
   new instance gets a zone drawn by `events.core.zones` (weighted by the zones' recent
   creations, seeded by the instance's name); it appends InstanceRequested, asks the provider,
   and appends InstanceCreated (or, if the provider refuses, InstanceDeactivated + InstanceDeleted
   with reason `create_failed` — a failure for that zone; a refusal that is not the zone's, such as
   exhausted quota, makes the pool wait `retry_after_s`); the pool's decision and its numbers are
   appended as PoolScalingDecided when it acts or its picture changes;
2. realize: an InstanceRequested nobody created — a job-private instance the scheduler asked
   for, or one whose creator crashed — is created now, unless it is a job-private instance its
   job no longer waits for (cancelled while Creating);
3. shrink: an instance idle past its pool's idle time (never one with attempts; keeping the
   pool's minimum) is deactivated, deleted at the provider, and marked InstanceDeleted; so is an
   inactive one (lost, drained, a finished job-private instance) once no attempt on it is open,
   and a job-private one whose job let go of it, booted or still pending (Hail's canceller:
   Creating → MJC Cancelled, then delete the VM);
4. reconcile (every `reconcile_interval_s`): a created instance the provider no longer lists is
   deactivated (`does_not_exist`) so health ends its attempts;
5. preemptions (every loop, before anything else): an instance the provider says it preempted is
   deactivated with reason `preempted`, so health ends its attempts as preemptions at once (retry
   policies count them: `max_preemptions`). Every loop, so it comes well before the instance's
   heartbeat times out and health would call it merely `not_responding`.
Only one autoscaler should run per cluster; it needs no leadership for safety (every action is
idempotent by instance name), only to avoid doubled requests.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from events.catalog import (
    Event,
    InstanceCreated,
    InstanceDeactivated,
    InstanceDeleted,
    InstanceRequested,
    PoolInstanceChoice,
    PoolScalingDecided,
)
from events.core.autoscale import PoolConfig, PoolSnapshot, decide_from_snapshots
from events.core.zones import ZoneWeight, choose_zone
from events.envelope import derived_event_id
from events.log import EventLog
from events.process import metrics
from events.publisher import Publisher
from projections.scheduling.follower import StateFollower
from projections.scheduling.model import InstanceEntry, InstanceState
from projections.scheduling.state import SchedulingState
from projections.scheduling.view_snapshots import ViewSnapshots
from services.autoscaler.decisions import DecisionLog, decision_event
from services.autoscaler.demand import instance_statuses, pool_lookahead
from services.autoscaler.observed import CREATE_FAILED, Observed, observe_before
from services.health.detector import PREEMPTED_REASON
from services.providers.base import InstanceProvider, InstanceSpec, ProviderError, ZoneExhausted

log = logging.getLogger(__name__)
_ALPHABET = string.ascii_lowercase + string.digits
_STOPPED_STATUSES = frozenset({"terminated", "stopping", "stopped", "suspended", "suspending"})


def random_instance_name(pool: str) -> str:
    return f"squall-{pool}-" + "".join(secrets.choice(_ALPHABET) for _ in range(8))


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class AutoscalerSettings:
    pools: tuple[PoolConfig, ...]
    loop_period_s: float = 15.0  # Hail's autoscaler_loop_period_secs
    realize_after_ms: int = 30_000  # a pool instance requested this long ago but never created gets created
    vanished_grace_ms: int = 120_000  # a created instance may take this long to show in the provider's list
    reconcile_interval_s: float = 60.0


@dataclass
class AutoscalerStats:
    loops: int = 0
    requested: int = 0
    created: int = 0
    create_failures: int = 0
    deleted: int = 0
    preempted: int = 0


class Autoscaler:
    def __init__(self, log_: EventLog, publisher: Publisher, provider: InstanceProvider,
                 settings: AutoscalerSettings, *, clock: Callable[[], int] = wall_clock_ms,
                 new_name: Callable[[str], str] = random_instance_name, view_id: str | None = None,
                 snapshots: ViewSnapshots | None = None) -> None:
        self._log = log_
        self._publisher = publisher
        self.provider = provider
        self.settings = settings
        self._clock = clock
        self._new_name = new_name
        self._view_id = view_id or secrets.token_hex(4)
        self._snapshots = snapshots
        self._pools = {p.name: p for p in settings.pools}
        self._pool_paused_until: dict[str, int] = {}
        self._busy: set[str] = set()  # instance names with a provider call in flight
        self._last_reconcile = 0.0
        self.observed = Observed()
        self.decisions = DecisionLog()
        self.follower: StateFollower | None = None
        self.stats = AutoscalerStats()

    @property
    def producer(self) -> str:
        return f"autoscaler/{self.provider.name}"

    async def start(self) -> None:
        """Fold the log up to now (a fresh private view, from the newest snapshot with snapshots), before
        the first loop."""
        topics = self._publisher.topics
        self.follower = StateFollower(self._log, topics, f"{topics.prefix}autoscaler-view.{self._view_id}",
                                      self._publisher.codec, snapshots=self._snapshots)
        self.follower.listeners.append(self.observed)
        await self.follower.start()
        # a view from a snapshot starts past instance events `observed` needs: those come from offset 0
        await observe_before(self._log, topics.instance, self.follower.positions, self._publisher.codec, self.observed)
        await self.follower.catch_up()

    async def run(self) -> None:
        await self.start()
        assert self.follower is not None
        try:
            while True:
                await self.loop_once()
                loop = asyncio.get_running_loop()
                until = loop.time() + self.settings.loop_period_s
                while (left := until - loop.time()) > 0:
                    await self.follower.poll(timeout_ms=max(1, int(left * 1000)))
        finally:
            await self.close()

    async def close(self) -> None:
        if self.follower is not None:
            await self.follower.close()

    async def loop_once(self) -> None:
        assert self.follower is not None
        await self.follower.poll(timeout_ms=0)
        state = self.follower.state
        now = self._clock()
        self.stats.loops += 1
        try:
            await self.provider.heal()  # before anything reads the fleet: a dead agent is back
        except ProviderError as exc:
            log.warning("restarting dead agents failed (%s); the next loop retries", exc)
        metrics.set_instance_utilisation(instance_utilisation(state))
        await self._deactivate_preempted(state, now)
        await self._grow_and_shrink(state, now)
        await self._realize_requested(state, now)
        await self._delete_inactive(state, now)
        if time.monotonic() - self._last_reconcile >= self.settings.reconcile_interval_s:
            self._last_reconcile = time.monotonic()
            await self._reconcile(state, now)

    # ---- grow and shrink ---------------------------------------------------------------------

    async def _grow_and_shrink(self, state: SchedulingState, now: int) -> None:
        statuses = instance_statuses(state, self._pools, self.observed.standing)
        self.observed.forget_except(set(state.instances))
        pools = self.settings.pools
        snapshots = {p.name: PoolSnapshot.of([s for s in statuses if s.pool == p.name], p.worker_mcpu) for p in pools}
        loop_ms = int(self.settings.loop_period_s * 1000)
        windows = {p.name: pool_lookahead(state, p, snapshots[p.name], loop_ms) for p in pools}
        decision = decide_from_snapshots(pools, {name: w.demand_mcpu for name, w in windows.items()}, snapshots, now)
        requests: list[InstanceSpec] = []
        decisions: list[PoolScalingDecided] = []
        for pool in pools:
            paused_until = self._pool_paused_until.get(pool.name, 0)
            paused = paused_until > now
            verdict = decision.verdicts[pool.name]
            if paused:  # the provider refused lately: ask again after the pause
                verdict = replace(verdict, requested=0, standing_requested=0)
            specs = [self._spec(pool, standing=False) for _ in range(verdict.requested)]
            specs += [self._spec(pool, standing=True) for _ in range(verdict.standing_requested)]
            requests += specs
            event = decision_event(pool, verdict, windows[pool.name], self._zone_weights(pool), [
                PoolInstanceChoice(instance_name=s.name, zone=s.zone, standing=s.standing) for s in specs],
                paused_until if paused else None, now, self.producer, self.stats.loops)
            if self.decisions.is_news(event):
                decisions.append(event)
        if decisions or requests:
            appended: list[Event] = [*decisions, *(self._requested(spec, now) for spec in requests)]
            await self._publisher.publish(appended)
            for event in decisions:
                self.decisions.appended(event)
            self.stats.requested += len(requests)
            await asyncio.gather(*(self._create(spec) for spec in requests))
        for name in decision.deletions:
            inst = state.instances.get(name)
            if inst is not None and not inst.attempts:
                await self._delete(inst, "idle")

    def _zone_weights(self, pool: PoolConfig) -> tuple[ZoneWeight, ...]:
        return self.observed.zones.weights(self.provider.zones_for(pool.region))

    def _spec(self, pool: PoolConfig, standing: bool) -> InstanceSpec:
        name = self._new_name(pool.name)
        weights = self._zone_weights(pool)
        zone = choose_zone(weights, seed=name) if weights else None
        if standing:
            return InstanceSpec(name=name, pool=pool.name, machine_type=pool.standing_machine_type,
                                cores_mcpu=pool.standing_mcpu, memory_bytes=pool.standing_memory_bytes,
                                storage_gib=pool.storage_gib, preemptible=pool.preemptible, region=pool.region,
                                zone=zone, standing=True)
        return InstanceSpec(name=name, pool=pool.name, machine_type=pool.machine_type, cores_mcpu=pool.worker_mcpu,
                            memory_bytes=pool.worker_memory_bytes, storage_gib=pool.storage_gib,
                            preemptible=pool.preemptible, region=pool.region, zone=zone)

    def _requested(self, spec: InstanceSpec, now: int) -> InstanceRequested:
        return InstanceRequested(
            event_id=derived_event_id("InstanceRequested", spec.name), occurred_at=now, producer=self.producer,
            instance_name=spec.name, pool=spec.pool, provider=self.provider.name, machine_type=spec.machine_type,
            cores_mcpu=spec.cores_mcpu, memory_bytes=spec.memory_bytes, storage_gib=spec.storage_gib,
            preemptible=spec.preemptible, region=spec.region, job_private_for=spec.job_private_for,
            standing=spec.standing, zone=spec.zone)

    async def _create(self, spec: InstanceSpec) -> None:
        self._busy.add(spec.name)
        try:
            created = await self.provider.create(spec)
        except ProviderError as exc:
            self.stats.create_failures += 1
            if not isinstance(exc, ZoneExhausted) or spec.zone is None:
                # not the zone's fault (quota, an outage): the whole pool waits; a zone's refusal only
                # lowers that zone's weight
                pause_ms = int(exc.retry_after_s * 1000)
                self._pool_paused_until[spec.pool] = self._clock() + pause_ms
                log.warning("creating %s failed (%s); pool %s waits %.0fs", spec.name, exc, spec.pool,
                            exc.retry_after_s)
            else:
                log.warning("creating %s in zone %s failed (%s); the zone's weight drops", spec.name, spec.zone, exc)
            now = self._clock()
            await self._publisher.publish([
                InstanceDeactivated(event_id=derived_event_id("InstanceDeactivated", spec.name, CREATE_FAILED),
                                    occurred_at=now, producer=self.producer, instance_name=spec.name,
                                    reason=CREATE_FAILED, zone=spec.zone),
                InstanceDeleted(event_id=derived_event_id("InstanceDeleted", spec.name), occurred_at=now,
                                producer=self.producer, instance_name=spec.name, reason=CREATE_FAILED)])
            return
        finally:
            self._busy.discard(spec.name)
        self.stats.created += 1
        await self._publisher.publish([InstanceCreated(
            event_id=derived_event_id("InstanceCreated", spec.name), occurred_at=self._clock(),
            producer=self.producer, instance_name=spec.name, provider=self.provider.name,
            provider_id=created.provider_id, zone=created.zone or spec.zone)])

    async def _realize_requested(self, state: SchedulingState, now: int) -> None:
        """Create instances that were requested but never created (job-private, or a crashed creator)."""
        todo = [i for i in state.instances.values()
                if i.state is InstanceState.PENDING and not i.created and i.name not in self._busy
                and (i.job_private_for or now - i.requested_at >= self.settings.realize_after_ms)
                and not state.private_instance_released(i)]  # that one is deleted, never created
        await asyncio.gather(*(self._create(self._spec_of(i)) for i in todo))

    def _spec_of(self, inst: InstanceEntry) -> InstanceSpec:
        """An instance requested but not created yet: in the zone it was requested in, or (a job-private
        one, whose request names none) a zone drawn as for any other."""
        zone = self.observed.requested_zone.get(inst.name)
        if zone is None:
            weights = self.observed.zones.weights(self.provider.zones_for(inst.region))
            zone = choose_zone(weights, seed=inst.name) if weights else None
        return InstanceSpec(name=inst.name, pool=inst.pool, machine_type=inst.machine_type or "",
                            cores_mcpu=inst.cores_mcpu, memory_bytes=inst.memory_bytes, storage_gib=inst.storage_gib,
                            preemptible=inst.preemptible, region=inst.region, job_private_for=inst.job_private_for,
                            zone=zone, standing=inst.name in self.observed.standing)

    # ---- deletion ----------------------------------------------------------------------------

    async def _delete_inactive(self, state: SchedulingState, now: int) -> None:
        for inst in list(state.instances.values()):
            if inst.deleted or inst.name in self._busy:
                continue
            finished_private = (inst.job_private_for is not None and inst.state is InstanceState.ACTIVE
                                and not inst.attempts and state.private_job_waiting(inst) is None)
            # booting or not: its job will never use it (e.g. cancelled while Creating)
            released_private = inst.live and not inst.attempts and state.private_instance_released(inst)
            if finished_private or released_private:
                await self._delete(inst, "job_complete")
            elif inst.state is InstanceState.INACTIVE and not inst.attempts \
                    and state.private_job_waiting(inst) is None:
                await self._delete(inst, "deactivated")

    async def _delete(self, inst: InstanceEntry, reason: str) -> None:
        self._busy.add(inst.name)
        try:
            if inst.state is not InstanceState.INACTIVE:  # first stop placements on it
                await self._publisher.publish([InstanceDeactivated(
                    event_id=derived_event_id("InstanceDeactivated", inst.name, reason), occurred_at=self._clock(),
                    producer=self.producer, instance_name=inst.name, reason=reason)])
            try:
                await self.provider.delete(inst.name, inst.provider_id)
            except ProviderError as exc:
                log.warning("deleting %s failed (%s); the next loop retries", inst.name, exc)
                return
            self.stats.deleted += 1
            await self._publisher.publish([InstanceDeleted(
                event_id=derived_event_id("InstanceDeleted", inst.name), occurred_at=self._clock(),
                producer=self.producer, instance_name=inst.name, reason=reason)])
        finally:
            self._busy.discard(inst.name)

    async def _deactivate_preempted(self, state: SchedulingState, now: int) -> None:
        try:
            names = await self.provider.preempted()
        except ProviderError as exc:
            log.warning("asking for preemptions failed (%s); the next loop asks again", exc)
            return
        preempted: list[Event] = []
        for name in sorted(set(names)):
            inst = state.instances.get(name)
            if inst is None or not inst.live or name in self._busy:
                continue
            preempted.append(InstanceDeactivated(
                event_id=derived_event_id("InstanceDeactivated", name, PREEMPTED_REASON), occurred_at=now,
                producer=self.producer, instance_name=name, reason=PREEMPTED_REASON))
        if preempted:
            log.warning("the provider preempted %s", ", ".join(e.instance_name for e in preempted))  # type: ignore[union-attr]
            self.stats.preempted += len(preempted)
            await self._publisher.publish(preempted)

    async def _reconcile(self, state: SchedulingState, now: int) -> None:
        try:
            listed = {i.name: i.status for i in await self.provider.list()}
        except ProviderError as exc:
            log.warning("listing instances failed (%s); reconciling later", exc)
            return
        vanished: list[Event] = []
        for inst in state.instances.values():
            if not inst.live or inst.name in self._busy:
                continue
            status = listed.get(inst.name)
            if status in _STOPPED_STATUSES:  # e.g. a preempted spot VM: its work is lost now
                reason = "terminated"
            elif status is None and inst.created and now - inst.requested_at >= self.settings.vanished_grace_ms:
                reason = "does_not_exist"
            else:
                continue
            vanished.append(InstanceDeactivated(
                event_id=derived_event_id("InstanceDeactivated", inst.name, reason), occurred_at=now,
                producer=self.producer, instance_name=inst.name, reason=reason))
        if vanished:
            log.warning("%d instances vanished from the provider; deactivating them", len(vanished))
            await self._publisher.publish(vanished)


def instance_utilisation(state: SchedulingState) -> dict[str, float]:
    """Allocated / total cores of each active instance (held decisions count as allocated)."""
    return {i.name: (i.cores_mcpu - i.free_cores_mcpu) / i.cores_mcpu
            for i in state.instances.values() if i.state is InstanceState.ACTIVE and i.cores_mcpu > 0}

