"""The discrete-event simulation: the real fair share, matcher and autoscaler over simulated time.

One heap of (time, sequence, kind, a, b) events; the sequence number breaks ties, so the run is a
pure function of the workload and the seed. What is real: `selection.select_candidates` (fair
share and candidate order), `matching.match`, `lookahead.lookahead` (Hail's window) and
`autoscale.decide` (standing workers and the pool limits included), called exactly as the scheduler
and autoscaler call them. What is modelled: the job lifecycle (ready → running → done; a job is ready when all its
parents are done; a preempted attempt puts the job back at the head of its user's queue),
runtimes drawn from the workload's distributions, boot times and preemptions. The lifecycle is
modelled directly rather than through the events.core fold, which would cost tens of
microseconds per event and make a million-job run take too long here.

A scheduling cycle runs at most every `cycle_ms`, and only after something changed (jobs became
ready, capacity was freed or added), like Hail's `run_if_changed` loop.
"""

from __future__ import annotations

import heapq
import random
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator

from events.core.autoscale import PoolSnapshot, decide_from_snapshots
from events.core.lookahead import Lookahead, enough_demand_mcpu, lookahead
from events.core.lookahead import UserQueue as PoolQueue
from events.core.matching import ReadyJob, match
from events.core.selection import UserQueue, select_candidates
from services.simulator.fleet import ACTIVE, DELETED, Fleet, SimInstance
from services.simulator.report import FairShareSample, Recorder, Report, fair_share_errors, percentiles_ms
from services.simulator.workload import BatchGroup, Workload

SUBMIT, INSTANCE_UP, JOB_DONE, PREEMPT, CYCLE, AUTOSCALE, SAMPLE = range(7)
HOUR_MS = 3_600_000


class Simulation:
    def __init__(self, workload: Workload, seed: int | None = None) -> None:
        self.workload = workload
        self.seed = workload.seed if seed is None else seed
        self.rng = random.Random(self.seed)
        self.now = 0
        self.heap: list[tuple[int, int, int, int, int]] = []
        self.sequence = 0
        self.fleet = Fleet(tuple(p.config for p in workload.pools))
        self.sim_pools = {p.config.name: p for p in workload.pools}
        self.groups = workload.batch_groups
        # Per job (index = job id): its batch group, first job of its batch, unfinished parents, ready time.
        self.job_group = array("i")
        self.job_base = array("q")
        self.pending_parents = array("i")
        self.ready_since = array("q")
        self.running: dict[int, tuple[SimInstance, int]] = {}  # job -> (instance, attempt sequence)
        self.queues: dict[str, dict[str, deque[int]]] = {pool: {} for pool in self.fleet.pools}
        self.ready_mcpu: dict[str, dict[str, int]] = {pool: {} for pool in self.fleet.pools}
        self.running_mcpu: dict[str, dict[str, int]] = {pool: {} for pool in self.fleet.pools}
        # Fair share can only converge after a turnover of running jobs (they are never preempted for
        # fairness), so the error is judged `fair_share_settle_ms` after the last batch submitted to a
        # pool. (A user whose queue empties causes no such lag: others take its cores as they free up.)
        self.demand_changed_ms: dict[str, int] = dict.fromkeys(self.fleet.pools, 0)
        self.ready_job_cache: dict[int, ReadyJob] = {}
        # per pool, how many ready jobs ask for each size: the smallest one sets the usable free cores
        self.ready_sizes: dict[str, dict[int, int]] = {pool: {} for pool in self.fleet.pools}
        self.done = 0
        self.events = 0
        self.cycle_pending = False
        self.sample_after_cycle = False
        self.recorder = Recorder()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, progress: Callable[[str], None] | None = None, progress_every_s: float = 30.0) -> Report:
        """Simulate to the last job. `progress` (if given) gets a status line every `progress_every_s`
        of wall-clock time, for long runs."""
        started, started_cpu = time.perf_counter(), time.process_time()
        self._setup()
        total = self.workload.total_jobs
        heap, recorder, fleet = self.heap, self.recorder, self.fleet
        next_progress_s = progress_every_s
        while heap and self.done < total:
            when, _, kind, a, b = heapq.heappop(heap)
            if when != self.now:
                recorder.advance(when, sum(fleet.used_mcpu.values()), sum(fleet.active_mcpu.values()))
                self.now = when
            self.events += 1
            if progress is not None and self.events % 1024 == 0:
                wall = time.perf_counter() - started
                if wall >= next_progress_s:
                    next_progress_s = wall + progress_every_s
                    progress(
                        f"{wall:,.0f} s wall: {self.done:,} of {total:,} jobs done "
                        f"({self.done / total:.1%}), simulated {self.now / 1000:,.0f} s"
                    )
            if kind == JOB_DONE:
                self._job_done(a, b)
            elif kind == CYCLE:
                self.cycle_pending = False
                self._cycle()
                if self.sample_after_cycle:
                    self.sample_after_cycle = False
                    self._sample()
            elif kind == SUBMIT:
                self._submit(a)
            elif kind == INSTANCE_UP:
                self._instance_up(fleet.instances[a])
            elif kind == PREEMPT:
                self._preempt(fleet.instances[a])
            elif kind == AUTOSCALE:
                self._autoscale()
                self._at(self.now + self.workload.autoscale_every_ms, AUTOSCALE)
            elif kind == SAMPLE:
                # Measure right after a scheduling cycle, so jobs that became ready since the last cycle
                # (at most cycle_ms ago) do not count as unfairness.
                if self.cycle_pending:
                    self.sample_after_cycle = True
                else:
                    self._sample()
                self._at(self.now + self.workload.sample_every_ms, SAMPLE)
        if self.done < total:
            raise RuntimeError(
                f"simulation stalled with {total - self.done} jobs unfinished (no capacity can run them)"
            )
        return self._report(time.perf_counter() - started, time.process_time() - started_cpu)

    def _at(self, when: int, kind: int, a: int = 0, b: int = 0) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (when, self.sequence, kind, a, b))

    def _changed(self) -> None:
        if not self.cycle_pending:
            self.cycle_pending = True
            cycle = self.workload.cycle_ms
            self._at((self.now // cycle + 1) * cycle, CYCLE)

    def _setup(self) -> None:
        for sim_pool in self.workload.pools:
            for _ in range(sim_pool.initial_instances):
                self._at(0, INSTANCE_UP, self.fleet.request(sim_pool.config.name).index)
        for index, group in enumerate(self.groups):
            for n in range(group.count):
                self._at(group.start_ms + n * group.every_ms, SUBMIT, index, n)
        self._at(0, AUTOSCALE)
        self._at(self.workload.sample_every_ms, SAMPLE)

    # -- jobs ----------------------------------------------------------------------------------

    def _submit(self, group_index: int) -> None:
        group = self.groups[group_index]
        base = len(self.job_group)
        size = group.jobs_per_batch
        self.job_group.extend([group_index] * size)
        self.job_base.extend([base] * size)
        self.ready_since.extend([0] * size)
        pending = [0] * size
        if group.fanout_parents:
            for child in range(group.fanout_parents, group.fanout_parents * (1 + group.fanout_children)):
                pending[child] = 1
        if group.gather:
            pending[size - 1] = size - 1
        self.pending_parents.extend(pending)
        self.demand_changed_ms[group.pool] = self.now
        for offset in range(size):
            if pending[offset] == 0:
                self._make_ready(base + offset, group, front=False)

    def _make_ready(self, job: int, group: BatchGroup, front: bool) -> None:
        self.ready_since[job] = self.now
        queue = self.queues[group.pool].get(group.user)
        if queue is None:
            queue = self.queues[group.pool][group.user] = deque()
        if front:
            queue.appendleft(job)
        else:
            queue.append(job)
        ready = self.ready_mcpu[group.pool]
        ready[group.user] = ready.get(group.user, 0) + group.cores_mcpu
        sizes = self.ready_sizes[group.pool]
        sizes[group.cores_mcpu] = sizes.get(group.cores_mcpu, 0) + 1
        self._changed()

    def _unready_size(self, pool: str, cores_mcpu: int) -> None:
        sizes = self.ready_sizes[pool]
        left = sizes[cores_mcpu] - 1
        if left:
            sizes[cores_mcpu] = left
        else:
            del sizes[cores_mcpu]

    def _children(self, job: int, group: BatchGroup) -> Iterator[int]:
        base = self.job_base[job]
        offset = job - base
        last = base + group.jobs_per_batch - 1
        if group.fanout_parents and offset < group.fanout_parents:
            first_child = base + group.fanout_parents + offset * group.fanout_children
            yield from range(first_child, first_child + group.fanout_children)
        if group.gather and job != last:
            yield last

    def _start(self, job: int, group: BatchGroup, instance: SimInstance) -> None:
        self.fleet.start(instance, job, group.cores_mcpu, group.memory_bytes, group.storage_gib)
        self.sequence += 1
        self.running[job] = (instance, self.sequence)
        self.recorder.wait(group.user, self.now - self.ready_since[job])
        running = self.running_mcpu[group.pool]
        running[group.user] = running.get(group.user, 0) + group.cores_mcpu
        self._at(self.now + group.runtime.sample_ms(self.rng), JOB_DONE, job, self.sequence)

    def _job_done(self, job: int, attempt: int) -> None:
        current = self.running.get(job)
        if current is None or current[1] != attempt:
            return  # a preempted attempt's completion: fenced, like a stale MJC
        instance = current[0]
        del self.running[job]
        group = self.groups[self.job_group[job]]
        self.fleet.finish(instance, job, group.cores_mcpu, group.memory_bytes, group.storage_gib, self.now)
        self.running_mcpu[group.pool][group.user] -= group.cores_mcpu
        self.done += 1
        if group.fanout_parents or group.gather:
            pending = self.pending_parents
            for child in self._children(job, group):
                pending[child] -= 1
                if pending[child] == 0:
                    self._make_ready(child, group, front=False)
        self._changed()

    # -- instances -----------------------------------------------------------------------------

    def _instance_up(self, instance: SimInstance) -> None:
        if instance.state in (ACTIVE, DELETED):
            return
        self.fleet.activate(instance, self.now)
        live = sum(len(live) for live in self.fleet.live.values())
        self.recorder.peak_instances = max(self.recorder.peak_instances, live)
        rate = self.sim_pools[instance.pool].preemptions_per_instance_hour
        if rate > 0:
            self._at(self.now + 1 + int(self.rng.expovariate(rate / HOUR_MS)), PREEMPT, instance.index)
        self._changed()

    def _preempt(self, instance: SimInstance) -> None:
        if instance.state != ACTIVE:
            return
        orphans = self.fleet.delete(instance)
        # the newest attempts go back first, so the oldest ends up at the head of the queue
        for job in reversed(orphans):
            del self.running[job]
            group = self.groups[self.job_group[job]]
            self.running_mcpu[group.pool][group.user] -= group.cores_mcpu
            self.recorder.preempted_attempts += 1
            self._make_ready(job, group, front=True)

    def _autoscale(self) -> None:
        # The fleet keeps the counts, so the decision does not list 10,000 instances every 15 s.
        snapshots = {pool: self.fleet.snapshot(pool) for pool in self.fleet.pools}
        demand = {pool: self._lookahead(pool, snapshots[pool]).demand_mcpu for pool in self.fleet.pools}
        decision = decide_from_snapshots(tuple(self.fleet.pools.values()), demand, snapshots, self.now)
        for standing, requests in ((False, decision.requests), (True, decision.standing)):
            for pool, count in requests.items():
                for _ in range(count):
                    instance = self.fleet.request(pool, standing)
                    self._at(self.now + self.sim_pools[pool].boot_ms, INSTANCE_UP, instance.index)
        for name in decision.deletions:
            orphans = self.fleet.delete(self.fleet.by_name[name])
            if orphans:
                raise AssertionError(f"autoscaler deleted {name} with running jobs")

    def _lookahead(self, pool: str, snapshot: PoolSnapshot) -> Lookahead:
        """Hail's look-ahead window over the pool's queues, as the autoscaler service computes it."""
        config = self.fleet.pools[pool]
        groups, job_group = self.groups, self.job_group
        running, ready = self.running_mcpu[pool], self.ready_mcpu[pool]
        users = {user: PoolQueue(running.get(user, 0), ready.get(user, 0),
                                 (groups[job_group[job]].cores_mcpu for job in queue))
                 for user, queue in self.queues[pool].items() if queue}
        enough = enough_demand_mcpu(config, snapshot.free_mcpu, snapshot.pending_mcpu or 0)
        return lookahead(config, users, self.workload.autoscale_every_ms, enough)

    # -- scheduling ----------------------------------------------------------------------------

    def _cycle(self) -> None:
        started, started_cpu = time.perf_counter(), time.process_time()
        self.recorder.cycles += 1
        for pool in self.fleet.pools:
            self._schedule_pool(pool)
        self.recorder.schedule_wall_s += time.perf_counter() - started
        self.recorder.schedule_cpu_s += time.process_time() - started_cpu

    def _schedule_pool(self, pool: str) -> None:
        queues = self.queues[pool]
        sizes = self.ready_sizes[pool]
        if not sizes:
            return
        free = self.fleet.usable_mcpu(pool, min(sizes))  # the shared rule (selection.usable_mcpu) over the buckets
        if free == 0:
            return  # no ready job of this pool fits anywhere: the pass would place nothing
        ready, running = self.ready_mcpu[pool], self.running_mcpu[pool]
        groups, job_group = self.groups, self.job_group
        users = set(running) | {user for user, queue in queues.items() if queue}
        selection = select_candidates(
            {user: UserQueue(running.get(user, 0), ready.get(user, 0), queues.get(user, ())) for user in users},
            free, lambda job: groups[job_group[job]].cores_mcpu)
        candidates = selection.candidates
        if not candidates:
            return
        taken = {user: [queues[user].popleft() for _ in range(n)] for user, n in selection.taken.items()}
        cache = self.ready_job_cache
        ready_jobs = [cache.get(job) or self._ready_job(job) for job in candidates]
        smallest = min(groups[job_group[job]].cores_mcpu for job in candidates)
        instances = self.fleet.free_capacity(pool, smallest, per_bucket=len(candidates))
        result = match(ready_jobs, instances, {pool: selection.shares}, self.now)
        placed = set()
        by_name = self.fleet.by_name
        for assignment in result.assignments:
            job = assignment.job_id
            placed.add(job)
            del cache[job]
            group = groups[job_group[job]]
            ready[group.user] -= group.cores_mcpu
            self._unready_size(pool, group.cores_mcpu)
            self._start(job, group, by_name[assignment.instance_name])
        self.recorder.placements += len(result.assignments)
        for user, jobs in taken.items():  # unplaced jobs go back to the head of their queue, in order
            queue = queues[user]
            for job in reversed(jobs):
                if job not in placed:
                    queue.appendleft(job)

    def _ready_job(self, job: int) -> ReadyJob:
        group = self.groups[self.job_group[job]]
        ready_job = self.ready_job_cache[job] = ReadyJob(
            batch_id=self.job_base[job],
            job_id=job,
            user=group.user,
            pool=group.pool,
            cores_mcpu=group.cores_mcpu,
            memory_bytes=group.memory_bytes,
            storage_gib=group.storage_gib,
            preemptible=group.preemptible,
        )
        return ready_job

    # -- measurements --------------------------------------------------------------------------

    def _sample(self) -> None:
        for pool in self.fleet.pools:
            capacity = self.fleet.active_mcpu[pool]
            ready = {u: c for u, c in self.ready_mcpu[pool].items() if c > 0}
            running = {u: c for u, c in self.running_mcpu[pool].items() if c > 0}
            free = self.fleet.free_mcpu(pool)
            # saturated: demand exceeds what is free, and less than 5% of the pool is idle
            if capacity <= 0 or not ready or sum(ready.values()) < free or free > capacity // 20:
                self.recorder.samples.append(FairShareSample(self.now, pool, None, False))
                continue
            # Judge how the cores in use are shared; the few idle fragments are utilisation, reported apart.
            errors = fair_share_errors(running, ready, sum(running.values()))
            settled = self.now - self.demand_changed_ms[pool] >= self.workload.fair_share_settle_ms
            self.recorder.samples.append(FairShareSample(self.now, pool, errors, settled))

    def _report(self, wall_s: float, cpu_s: float) -> Report:
        r = self.recorder
        all_waits = [w for waits in r.waits_by_user.values() for w in waits]
        saturated = [s for s in r.samples if s.errors is not None]
        settled = [s for s in saturated if s.settled]
        by_user: dict[str, list[float]] = {}
        for sample in settled:
            for user, error in (sample.errors or {}).items():
                by_user.setdefault(user, []).append(error)
        abs_errors = [abs(e) for errors in by_user.values() for e in errors]
        # including the turnover after each submission, when running jobs cannot yet be fair
        all_abs_errors = sorted(abs(e) for s in saturated for e in (s.errors or {}).values())
        results = {
            "workload": self.workload.name,
            "seed": self.seed,
            "jobs": self.workload.total_jobs,
            "placements": r.placements,
            "cycles": r.cycles,
            "simulated_s": self.now / 1000,
            "peak_instances": r.peak_instances,
            "instances_requested": self.fleet.requested,
            "instances_deleted": self.fleet.deleted,
            "preempted_attempts": r.preempted_attempts,
            "utilisation": round(r.used_area / r.capacity_area, 6) if r.capacity_area else 0.0,
            "queue_wait_ms": percentiles_ms(all_waits),
            "queue_wait_ms_by_user": {u: percentiles_ms(w) for u, w in sorted(r.waits_by_user.items())},
            "fair_share": {
                "samples": len(r.samples),
                "saturated_samples": len(saturated),
                "settled_samples": len(settled),
                "settle_s": self.workload.fair_share_settle_ms / 1000,
                "max_abs_error": round(max(abs_errors, default=0.0), 6),
                "mean_abs_error": round(sum(abs_errors) / len(abs_errors), 6) if abs_errors else 0.0,
                "by_user": {
                    u: {
                        "mean_error": round(sum(e) / len(e), 6),
                        "max_abs_error": round(max(abs(x) for x in e), 6),
                    }
                    for u, e in sorted(by_user.items())
                },
                "including_settling": {
                    "max_abs_error": round(all_abs_errors[-1], 6) if all_abs_errors else 0.0,
                    "p95_abs_error": round(all_abs_errors[(len(all_abs_errors) * 95) // 100], 6)
                    if all_abs_errors
                    else 0.0,
                },
                "series": [
                    {"t_s": s.t_ms / 1000, "pool": s.pool, "settled": s.settled, "errors": s.errors}
                    for s in saturated
                ],
            },
        }
        timing = {
            "wall_s": round(wall_s, 3),
            "scheduling_wall_s": round(r.schedule_wall_s, 3),
            "decisions_per_s": round(r.placements / r.schedule_wall_s) if r.schedule_wall_s else 0,
            # on a shared machine the CPU time is the steadier measure
            "cpu_s": round(cpu_s, 3),
            "scheduling_cpu_s": round(r.schedule_cpu_s, 3),
            "decisions_per_cpu_s": round(r.placements / r.schedule_cpu_s) if r.schedule_cpu_s else 0,
            "simulated_events_per_s": round(self.events / wall_s) if wall_s else 0,
        }
        return Report(results=results, timing=timing)


def simulate(
    workload: Workload, seed: int | None = None, progress: Callable[[str], None] | None = None
) -> Report:
    return Simulation(workload, seed).run(progress)
