"""Cancelling a 100,000-job batch through the real read-model projection (PostgreSQL sink), the way
Hail #15120's batches were cancelled: thousands running, the rest Ready, placements racing the cancel,
and part of the log delivered twice. The log is made by the resolver's own core (events.core), folded
by the projection into Postgres in chunks, and the counters are checked against the jobs' states
there; the scheduler's view of the same log must hold nothing afterwards."""

from __future__ import annotations

import random
from collections import Counter

import psycopg
import pytest

from events.catalog import AttemptKillRequested, Event, InstanceActivated
from events.core.lifecycle import react
from events.log import EventLog
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.service import run_readmodel
from projections.runner import RunnerSettings
from projections.scheduling.state import SchedulingState
from tests.unit.core.lifecycle_world import BATCH, PRODUCER, Builder, World

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_JOBS = 100_000
N_INSTANCES, CORES_EACH = 50, 44  # 2,200 one-core slots
SUCCEEDED = 500  # finish before the cancel
RUNNING = 2_000  # running when the cancel is requested
RACING = 100  # placed after the cancel request, before the resolver's BatchCancelled lands


class Resolver:
    """The resolver's loop, in memory: fold, react, append what it derives (kills go to workers)."""

    def __init__(self) -> None:
        self.world = World()
        self.kills: list[AttemptKillRequested] = []

    def append(self, *events: Event) -> None:
        self.world.append(*events)

    def settle(self) -> None:
        for _ in range(50):
            assert self.world.state is not None
            derived = react(self.world.state, PRODUCER)
            self.world.state.clear_dirty()
            self.kills += [e for e in derived if isinstance(e, AttemptKillRequested)]
            batch_events = [e for e in derived if e.TOPIC == "batch"]
            if not batch_events:
                return
            self.append(*batch_events)
        raise AssertionError("the resolver never settled")


def cancel_log() -> tuple[list[Event], list[Event]]:
    """The batch topic's events (with re-deliveries) and the instance topic's."""
    b, r = Builder(), Resolver()
    r.append(b.batch(), b.update(1, N_JOBS, 1, n_job_groups=2), b.group(1), b.group(2, parent=1))
    r.append(*[b.job(j, group=j % 3) for j in range(1, N_JOBS + 1)])
    r.append(b.commit(1, N_JOBS, 1))
    r.settle()  # every job Ready
    instances = [InstanceActivated(event_id=f"ia-{i}", occurred_at=b.clock.tick(), producer="w",
                                   instance_name=f"i-{i}", pool="standard", cores_mcpu=CORES_EACH * 1000,
                                   memory_bytes=CORES_EACH * 2**32, storage_gib=400, region="local", preemptible=True,
                                   agent_version=None) for i in range(N_INSTANCES)]

    def place(job_id: int) -> None:
        r.append(b.sj(job_id, f"a{job_id}", instance=f"i-{job_id % N_INSTANCES}"))

    for job_id in range(1, RUNNING + 1):
        place(job_id)
    r.settle()  # the resolver's verdicts: a worker gets its assignment only after the acceptance is in the log
    for job_id in range(1, RUNNING + 1):
        r.append(b.mjs(job_id, f"a{job_id}", instance=f"i-{job_id % N_INSTANCES}"))
    for job_id in range(1, SUCCEEDED + 1):
        r.append(b.mjc(job_id, f"a{job_id}", "Success", instance=f"i-{job_id % N_INSTANCES}"))
    r.settle()
    r.append(b.cancel())
    for job_id in range(RUNNING + 1, RUNNING + RACING + 1):  # the scheduler had not seen the cancel yet
        place(job_id)
    r.settle()  # BatchCancelled, a JobCancelled per Ready job, a kill per running attempt
    assert len({k.attempt_id for k in r.kills}) == RUNNING - SUCCEEDED + RACING
    for kill in r.kills:  # workers report the killed attempts
        r.append(b.mjc(kill.job_id, kill.attempt_id, "Cancelled", "killed", None, instance=kill.instance_name))
    r.settle()
    state = r.world.state
    assert state is not None and state.complete and state.n_cancelled == N_JOBS - SUCCEEDED
    log = list(r.world.log)
    rng = random.Random(15120)
    for i in sorted(rng.sample(range(len(log)), len(log) // 100)):  # 1% delivered twice, later on
        log.insert(min(len(log), i + rng.randint(1, 5_000)), log[i])
    return log, instances


async def test_cancelling_a_100k_job_batch_keeps_every_counter_exact(memory_log: EventLog, topics: Topics,
                                                                      readmodel_db: str) -> None:
    batch_events, instance_events = cancel_log()
    publisher = Publisher(memory_log, topics)
    await publisher.publish(instance_events)
    for start in range(0, len(batch_events), 20_000):
        await publisher.publish(batch_events[start:start + 20_000])
    until = {(t, p): e for t in (topics.batch, topics.instance) for p, e in (await memory_log.end_offsets(t)).items()}
    await run_readmodel(memory_log, topics, readmodel_db, settings=RunnerSettings(max_batch=5_000, workers=2),
                        until=until)

    with psycopg.connect(readmodel_db) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM jobs WHERE batch_id = %s GROUP BY state",
                                   (BATCH,)).fetchall())
        assert states == {"Success": SUCCEEDED, "Cancelled": N_JOBS - SUCCEEDED}
        batch = conn.execute("SELECT n_jobs, n_completed, n_succeeded, n_failed, n_cancelled, state, cancelled, "
                             "time_completed IS NOT NULL FROM batches WHERE batch_id = %s", (BATCH,)).fetchone()
        assert batch == (N_JOBS, N_JOBS, SUCCEEDED, 0, N_JOBS - SUCCEEDED, "complete", True, True)
        per_group = Counter()
        for group_id, state, n in conn.execute(
                "SELECT job_group_id, state, count(*) FROM jobs WHERE batch_id = %s GROUP BY 1, 2", (BATCH,)):
            per_group[(group_id, state)] = n
        groups = conn.execute("SELECT job_group_id, ancestor_ids, n_jobs, n_completed, n_succeeded, n_failed, "
                              "n_cancelled FROM job_groups WHERE batch_id = %s", (BATCH,)).fetchall()
        for group_id, _, n_jobs, n_completed, n_succeeded, n_failed, n_cancelled in groups:
            members = [g for g, ancestors, *_ in groups if group_id in ancestors]
            succeeded = sum(per_group[(g, "Success")] for g in members)
            cancelled = sum(per_group[(g, "Cancelled")] for g in members)
            assert (n_jobs, n_completed, n_succeeded, n_failed, n_cancelled) == (
                succeeded + cancelled, succeeded + cancelled, succeeded, 0, cancelled), f"group {group_id}"
        assert conn.execute("SELECT count(*) FROM job_groups WHERE least(n_jobs, n_completed, n_succeeded, n_failed, "
                            "n_cancelled) < 0 OR n_completed > n_jobs").fetchone() == (0,)
        attempts = conn.execute("SELECT count(*), count(end_time) FROM attempts WHERE batch_id = %s",
                                (BATCH,)).fetchone()
        assert attempts == (RUNNING + RACING, RUNNING + RACING), "every attempt placed has ended"

    scheduling = SchedulingState()  # the scheduler's view of the same log: nothing left to hold
    for event in instance_events + batch_events:
        scheduling.apply(event)
    assert not scheduling.jobs and not scheduling.attempts and not any(len(q) for q in scheduling.ready.values())
    assert all(i.free_cores_mcpu == i.cores_mcpu for i in scheduling.instances.values())
    assert all(c == 0 for users in scheduling.running_cores.values() for c in users.values())
