"""Cancelling stays exact (Hail #15120: a cancel stalled because its counters went negative): a property
test over random cancel races, folding one log into all three places that count.

A run interleaves, in an order hypothesis picks: batch and group cancels (repeated, and racing the
resolver's own BatchCancelled/JobGroupCancelled), schedulers placing Ready jobs on two instances,
workers starting and ending attempts (killed ones included; only attempts whose acceptance is in the
log, as the resolver appends the verdict before the worker's assignment), the resolver's derived
events (verdicts included) landing late, and re-deliveries of any earlier event. Every event of the log is folded by
- the lifecycle core (the resolver's state: events.core),
- the read model (projections/readmodel: convert, then the fold the Postgres sink applies),
- the scheduling view (projections/scheduling: ready queues, running cores, free capacity),
and after every step:
- no counter is negative, none exceeds what it counts;
- each batch and group counter equals what the jobs' states say, in the read model as in the core,
  and the two agree (n_jobs, completed, succeeded, failed, cancelled);
- the scheduling view's ready cores, running cores and free capacity equal what its queues, attempts
  and instances hold; free capacity never exceeds an instance's size;
- a re-delivered event changes none of the three.
At the end the run is driven to quiescence: every job is complete in all three, the batch is complete
with n_completed == n_jobs, and nothing is left queued, running or holding capacity.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import AttemptAssigned, AttemptKillRequested, Event, InstanceActivated
from events.core.lifecycle import COMPLETE_STATES, READY, RUNNING, BatchState, react
from projections.readmodel.convert import convert_at
from projections.readmodel.fold import ReadModel
from projections.scheduling.model import JobPhase
from projections.scheduling.state import SchedulingState
from tests.unit.core.lifecycle_world import BATCH, PRODUCER, Builder, World

INSTANCES = {"i-1": 4000, "i-2": 2000}  # name -> cores (mCPU); jobs take 1000 each
OUTCOMES = [("Success", None, 0), ("Failed", "nonzero_exit", 1), ("Error", "instance_lost", None),
            ("Cancelled", "killed", None)]
ACTIONS = (["react"] * 4 + ["land"] * 4 + ["schedule"] * 4 + ["start"] * 2 + ["complete"] * 3 + ["redeliver"] * 3
           + ["cancel_batch"] * 2 + ["cancel_group"] * 2)
COUNTER_OF = {"Success": "n_succeeded", "Failed": "n_failed", "Error": "n_failed", "Cancelled": "n_cancelled"}


class Folds:
    """One log folded three ways, as the resolver, the read-model projection and the scheduler do."""

    def __init__(self) -> None:
        self.world = World()
        self.model = ReadModel()
        self.scheduling = SchedulingState()
        self.n = 0

    @property
    def core(self) -> BatchState:
        assert self.world.state is not None
        return self.world.state

    def append(self, event: Event) -> None:
        if event.TOPIC == "batch":
            self.world.append(event)
        self.model.apply_all(convert_at(event, event.TOPIC, 0, self.n))
        self.scheduling.apply(event)
        self.n += 1

    def snapshot(self) -> Any:
        s = self.scheduling
        return (self.core.snapshot(), copy.deepcopy(self.model.rows),
                {k: (j.phase, j.attempt_id, j.not_before) for k, j in s.jobs.items()},
                {k: (list(q), q.cores_mcpu) for k, q in s.ready.items()},
                {a: (e.instance_name, e.demand) for a, e in s.attempts.items()},
                {n: (i.state, i.free_cores_mcpu, sorted(i.attempts)) for n, i in s.instances.items()},
                {p: dict(u) for p, u in s.running_cores.items()})


class Run:
    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.b = Builder()
        self.f = Folds()
        self.log: list[Event] = []
        self.in_flight: list[Event] = []
        self.n_attempts = 0

    def draw(self, strategy):  # type: ignore[no-untyped-def]
        return self.data.draw(strategy)

    def setup(self) -> None:
        b = self.b
        n_jobs = self.draw(st.integers(1, 10))
        parents = {j: tuple(sorted(self.draw(st.sets(st.integers(1, j - 1), max_size=2)))) if j > 1 else ()
                   for j in range(1, n_jobs + 1)}
        always = self.draw(st.sets(st.integers(1, n_jobs), max_size=2))
        groups = [self.draw(st.integers(0, 2)) for _ in range(n_jobs)]
        for name, cores in INSTANCES.items():
            self.append(InstanceActivated(event_id=f"ia-{name}", occurred_at=b.clock.tick(), producer="w",
                                          instance_name=name, pool="standard", cores_mcpu=cores,
                                          memory_bytes=cores * 2**21, storage_gib=100, region="local",
                                          preemptible=True, agent_version=None))
        for e in [b.batch(), b.update(1, n_jobs, 1, n_job_groups=2), b.group(1), b.group(2, parent=1)]:
            self.append(e)
        for j in range(1, n_jobs + 1):
            self.append(b.job(j, parents[j], always_run=j in always, n_max_attempts=2, group=groups[j - 1]))
        self.append(b.commit(1, n_jobs, 1))

    def append(self, event: Event) -> None:
        self.log.append(event)
        self.f.append(event)
        check(self.f)

    def react(self) -> None:
        for e in react(self.f.core, PRODUCER):
            if e.TOPIC == "batch" and all(e.event_id != x.event_id for x in self.in_flight):
                self.in_flight.append(e)
        self.f.core.clear_dirty()

    def land(self, n: int) -> None:
        landing, self.in_flight = self.in_flight[:n], self.in_flight[n:]
        for e in landing:
            self.append(e)

    def jobs_in(self, *states: str) -> list[int]:
        return sorted(j.job_id for j in self.f.core.jobs.values() if j.state in states)

    def judged_in(self, *states: str) -> list[int]:
        """Jobs in `states` whose current attempt's acceptance is in the log: only those can a worker
        report on, as the resolver appends an AttemptAssigned only after the verdict."""
        pending = {(v.job_id, v.attempt_id) for v in self.f.core.verdicts_due.values() if v.reason is None}
        return [j for j in self.jobs_in(*states) if (j, self.f.core.jobs[j].attempt.attempt_id) not in pending]

    def free_instance(self) -> str | None:
        """An instance the scheduling view says has a core free (what the real scheduler looks at)."""
        free = [n for n, i in sorted(self.f.scheduling.instances.items()) if i.free_cores_mcpu >= 1000]
        return self.draw(st.sampled_from(free)) if free else None

    def step(self, action: str) -> None:
        b, core = self.b, self.f.core
        if action == "react":
            self.react()
        elif action == "land" and self.in_flight:
            self.land(self.draw(st.integers(1, len(self.in_flight))))
        elif action == "schedule" and (ready := self.jobs_in(READY)) and (instance := self.free_instance()):
            self.n_attempts += 1
            self.append(b.sj(self.draw(st.sampled_from(ready)), f"at{self.n_attempts}", instance=instance))
        elif action == "start" and (running := self.judged_in(RUNNING)):
            job = core.jobs[self.draw(st.sampled_from(running))]
            self.append(b.mjs(job.job_id, job.attempt.attempt_id, instance=job.attempt.instance_name))
        elif action == "complete" and (running := self.judged_in(RUNNING)):
            job = core.jobs[self.draw(st.sampled_from(running))]
            outcome, cause, code = self.draw(st.sampled_from(OUTCOMES))
            self.append(b.mjc(job.job_id, job.attempt.attempt_id, outcome, cause, code,
                              instance=job.attempt.instance_name))
        elif action == "redeliver":
            earlier = self.draw(st.sampled_from(self.log))
            before = self.f.snapshot()
            self.append(earlier)
            assert self.f.snapshot() == before, f"re-delivered {earlier} changed a fold"
        elif action == "cancel_batch":
            self.append(b.cancel())
        elif action == "cancel_group":
            self.append(b.cancel_group(self.draw(st.integers(1, 2))))

    def drive_to_quiescence(self) -> None:
        for _ in range(300):
            self.react()
            if self.in_flight:
                self.land(len(self.in_flight))
                continue
            ready, running = self.jobs_in(READY), self.jobs_in(RUNNING)
            if not ready and not running:
                return
            for job_id in self.judged_in(RUNNING):  # workers finish (a killed attempt reports Cancelled)
                job = self.f.core.jobs[job_id]
                if job.completion is None:
                    self.append(self.b.mjc(job_id, job.attempt.attempt_id, "Success",
                                           instance=job.attempt.instance_name))
            for job_id in ready:
                instance = next((n for n, i in sorted(self.f.scheduling.instances.items())
                                 if i.free_cores_mcpu >= 1000), None)
                if instance is None:
                    break
                self.n_attempts += 1
                self.append(self.b.sj(job_id, f"at{self.n_attempts}", instance=instance))
        raise AssertionError("the batch never quiesced")


# --- the invariants -----------------------------------------------------------------------------

def check(f: Folds) -> None:
    if f.world.state is None:
        check_scheduling(f.scheduling)
        return
    core, rows = f.core, f.model.rows
    jobs = {k[1]: r for k, r in rows["jobs"].items() if k[0] == BATCH}
    for (batch_id, gid), group in rows["job_groups"].items():
        members = [j for j in jobs.values() if j["committed"] and gid in rows["job_groups"][(batch_id, j["job_group_id"])]["ancestor_ids"]]
        expect_counters(group, members, f"read model group {gid}")
        core_group = core.groups[gid]
        assert (group["n_jobs"], group["n_completed"], group["n_succeeded"], group["n_failed"], group["n_cancelled"]) == (
            core_group.n_jobs, core_group.n_completed, core_group.n_succeeded, core_group.n_failed,
            core_group.n_cancelled), f"group {gid}: the read model and the core disagree"
    batch = rows["batches"][(BATCH,)]
    expect_counters(batch, [j for j in jobs.values() if j["committed"]], "read model batch")
    assert batch["n_completed"] == core.n_completed and batch["n_cancelled"] == core.n_cancelled
    if batch["state"] == "complete" and batch["n_jobs"]:
        assert batch["n_completed"] == batch["n_jobs"]
    for job_id, job in core.jobs.items():
        if job.state in COMPLETE_STATES:
            assert jobs[job_id]["state"] == job.state, f"job {job_id}: core {job.state}, read model {jobs[job_id]['state']}"
            assert (BATCH, job_id) not in f.scheduling.jobs, f"job {job_id} is complete but still scheduled"
        else:
            assert jobs[job_id]["state"] not in COMPLETE_STATES, f"job {job_id} complete in the read model only"
    check_scheduling(f.scheduling)


def expect_counters(row: dict[str, Any], members: list[dict[str, Any]], what: str) -> None:
    states = Counter(j["state"] for j in members)
    expected = {"n_jobs": len(members), "n_succeeded": states["Success"],
                "n_failed": states["Failed"] + states["Error"], "n_cancelled": states["Cancelled"]}
    expected["n_completed"] = expected["n_succeeded"] + expected["n_failed"] + expected["n_cancelled"]
    got = {k: row[k] for k in expected}
    assert got == expected, f"{what}: counters {got} but its jobs say {expected}"
    assert all(v >= 0 for v in got.values()) and got["n_completed"] <= got["n_jobs"]


def check_scheduling(s: SchedulingState) -> None:
    for (pool, user), queue in s.ready.items():
        keys = list(queue)
        assert queue.cores_mcpu == sum(s.jobs[k].demand.cores_mcpu for k in keys) >= 0, (pool, user)
        assert all(s.jobs[k].phase is JobPhase.READY for k in keys)
    queued = {k for q in s.ready.values() for k in q}
    assert {k for k, j in s.jobs.items() if j.phase is JobPhase.READY} == queued, "a Ready job missing from its queue"
    held: dict[str, dict[str, int]] = {}
    for attempt in s.attempts.values():
        held.setdefault(attempt.pool, {}).setdefault(attempt.user, 0)
        held[attempt.pool][attempt.user] += attempt.demand.cores_mcpu
    for pool, users in s.running_cores.items():
        for user, cores in users.items():
            assert cores == held.get(pool, {}).get(user, 0) >= 0, f"running cores of {user} in {pool}: {cores}"
    for inst in s.instances.values():
        used = sum(s.attempts[a].demand.cores_mcpu for a in inst.attempts)
        assert inst.free_cores_mcpu == inst.cores_mcpu - used, f"{inst.name}: free {inst.free_cores_mcpu}, used {used}"
        assert inst.free_cores_mcpu <= inst.cores_mcpu


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cancel_races_keep_every_counter_exact_in_the_core_the_read_model_and_the_scheduler(data):
    run = Run(data)
    run.setup()
    for action in data.draw(st.lists(st.sampled_from(ACTIONS), min_size=15, max_size=70)):
        run.step(action)
    run.drive_to_quiescence()

    f = run.f
    assert f.core.complete
    batch = f.model.rows["batches"][(BATCH,)]
    assert batch["state"] == "complete" and batch["n_completed"] == batch["n_jobs"] == len(f.core.jobs)
    s = f.scheduling
    assert not s.attempts and not [k for k in s.jobs if k[0] == BATCH]
    assert all(q.cores_mcpu == 0 and not len(q) for q in s.ready.values())
    assert all(cores == 0 for users in s.running_cores.values() for cores in users.values())
    assert all(i.free_cores_mcpu == i.cores_mcpu for i in s.instances.values())


def settle(f: Folds) -> list[Event]:
    """React and fold until nothing new is derived; returns the assignment-topic events on the way."""
    assignments: list[Event] = []
    for _ in range(20):
        derived = react(f.core, PRODUCER)
        f.core.clear_dirty()
        assignments += [e for e in derived if e.TOPIC != "batch"]
        batch_events = [e for e in derived if e.TOPIC == "batch"]
        if not batch_events:
            return assignments
        for e in batch_events:
            f.append(e)
    raise AssertionError("never settled")


def test_a_cancelled_batch_kills_every_running_attempt_and_then_holds_nothing():
    """The stall of Hail #15120 was running jobs nobody killed: here every running attempt gets a kill,
    the Ready job is cancelled at once, and once the killed attempts report, nothing is counted as
    running, ready or holding capacity anywhere."""
    b, f = Builder(), Folds()
    f.append(InstanceActivated(event_id="ia", occurred_at=1, producer="w", instance_name="i-1", pool="standard",
                               cores_mcpu=4000, memory_bytes=2**34, storage_gib=100, region="local", preemptible=True,
                               agent_version=None))
    for e in [b.batch(), b.update(1, 3, 1), *[b.job(j) for j in (1, 2, 3)], b.commit(1, 3, 1)]:
        f.append(e)
    settle(f)
    f.append(b.sj(1, "a1"))
    f.append(b.sj(2, "a2"))
    assert {e.attempt_id for e in settle(f) if isinstance(e, AttemptAssigned)} == {"a1", "a2"}
    assert f.scheduling.instances["i-1"].free_cores_mcpu == 2000
    f.append(b.cancel())
    kills = sorted(e.attempt_id for e in settle(f) if isinstance(e, AttemptKillRequested))
    assert kills == ["a1", "a2"]
    assert f.core.jobs[3].state == "Cancelled" and f.model.rows["jobs"][(BATCH, 3)]["state"] == "Cancelled"
    for job_id, attempt in ((1, "a1"), (2, "a2")):
        f.append(b.mjc(job_id, attempt, "Cancelled", "killed", None))
    settle(f)
    check(f)
    batch = f.model.rows["batches"][(BATCH,)]
    assert (batch["n_cancelled"], batch["n_completed"], batch["state"]) == (3, 3, "complete")
    assert not f.scheduling.attempts and f.scheduling.instances["i-1"].free_cores_mcpu == 4000
