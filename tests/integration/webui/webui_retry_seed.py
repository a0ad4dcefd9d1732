"""A batch whose jobs were retried under retry policies, put in the read model the way squall puts it:
the events a front end, scheduler, workers and health would append, the lifecycle core's own decisions
(evolve + react, as the resolver runs them: every retry here is decided by events/core/retries.py),
then the read-model projection's convert + fold + sink. So the UI is shown exactly what it would show.

Batch RETRY_BATCH of alice ("retry-demo", default policy: non-preemptible after 1 preemption):
  job 1 Success  out of memory at 231 MiB, retried with 462 MiB (oom_memory_multiplier 2, up to 1 GiB)
  job 2 Success  exit 42 twice (retry_exit_codes [42]), then passed
  job 3 Running  preempted on a preemptible instance, now on a non-preemptible one (max_preemptions 1),
                 billed so far by its worker's billing update
  job 4 Failed   out of memory at 231 MiB and again at its cap, 462 MiB: final
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import psycopg

from events import catalog as ev
from events.core.lifecycle import BatchState, evolve, react
from events.log import Position
from projections.readmodel.convert import convert
from projections.readmodel.fold import ReadModel
from projections.readmodel.sink import write
from tests.fakes.streams import job_spec, spec_json

RETRY_BATCH = 11
MIB = 2**20
LOWMEM = 231 * MIB
T0 = 1_764_100_000_000


class _Cluster:
    """Appends events, settles the batch as the resolver does, and keeps the log in order."""

    def __init__(self) -> None:
        self.log: list[ev.Event] = []
        self.state: BatchState | None = None
        self.t = T0
        self._ids = itertools.count(1)

    def env(self, kind: str) -> dict[str, object]:
        self.t += 1_000
        return {"event_id": f"{kind}-{next(self._ids)}", "occurred_at": self.t, "producer": "seed"}

    def append(self, *events: ev.Event) -> None:
        for e in events:
            self.log.append(e)
            if e.TOPIC == "batch":
                self.state = evolve(self.state, e)
        self.settle()

    def settle(self) -> None:
        while True:
            assert self.state is not None
            derived = [e for e in react(self.state, "resolver/seed") if e.TOPIC == "batch"]
            self.state.clear_dirty()
            if not derived:
                return
            for e in derived:
                self.log.append(e)
                self.state = evolve(self.state, e)

    def run(self, job_id: int, attempt: str, instance: str, outcome: str, cause: str | None, exit_code: int | None,
            memory: int, took_ms: int = 4_000, ends: bool = True) -> None:
        b = {"batch_id": RETRY_BATCH, "job_id": job_id, "attempt_id": attempt, "instance_name": instance}
        self.append(ev.JobAttemptScheduled(**self.env("sj"), **b, scheduler_epoch=1, user="alice",  # type: ignore[arg-type]
                                           cores_mcpu=250, memory_bytes=memory, storage_gib=0, awaits_verdict=True))
        started = self.t + 500
        self.append(ev.JobAttemptStarted(**self.env("mjs"), **b, started_at=started))  # type: ignore[arg-type]
        if ends:
            self.t += took_ms
            self.append(ev.JobAttemptCompleted(**self.env("mjc"), **b, outcome=outcome, exit_code=exit_code,  # type: ignore[arg-type]
                                               failure_cause=cause, out_of_memory=cause == "out_of_memory",
                                               started_at=started, ended_at=self.t, steps=()))


def _instance(c: _Cluster, name: str, pool: str, preemptible: bool) -> ev.InstanceActivated:
    return ev.InstanceActivated(**c.env("ia"), instance_name=name, pool=pool, cores_mcpu=2000,  # type: ignore[arg-type]
                                memory_bytes=4 << 30, storage_gib=20, region="local", preemptible=preemptible,
                                agent_version="seed")


def retry_events() -> list[ev.Event]:
    c = _Cluster()
    oom = ev.RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=2 * LOWMEM, retry_exit_codes=())
    default = ev.RetryPolicy(max_preemptions=1, retry_exit_codes=())
    with_default = {1: replace(oom, max_preemptions=1), 2: replace(default, retry_exit_codes=(42,)), 3: default,
                    4: replace(oom, max_preemptions=1)}
    spec = replace(job_spec(cores_mcpu=250, memory_bytes=LOWMEM),
                   resources=ev.Resources(cores_mcpu=250, memory_bytes=LOWMEM, storage_gib=0, preemptible=True,
                                          worker_type="highcpu"))
    c.append(ev.BatchCreated(**c.env("bc"), batch_id=RETRY_BATCH, user="alice", billing_project="test",  # type: ignore[arg-type]
                             token="retry-demo", attributes={"name": "retry-demo"}, retry_policy=default),
             ev.BatchUpdateCreated(**c.env("uc"), batch_id=RETRY_BATCH, update_id=1, token="u1", n_jobs=4,  # type: ignore[arg-type]
                                   n_job_groups=0, start_job_id=1, start_job_group_id=1),
             *[ev.JobCreated(**c.env("jc"), batch_id=RETRY_BATCH, job_id=j, update_id=1, job_group_id=0,  # type: ignore[arg-type]
                             parent_ids=(), always_run=False, n_max_attempts=5, user="alice", billing_project="test",
                             attributes={"name": name}, spec=spec, spec_json=spec_json(spec),
                             retry_policy=with_default[j])
               for j, name in ((1, "align"), (2, "fetch-refs"), (3, "call-variants"), (4, "assemble"))],
             ev.BatchUpdateCommitted(**c.env("cm"), batch_id=RETRY_BATCH, update_id=1, n_jobs=4,  # type: ignore[arg-type]
                                     n_job_groups=0, start_job_id=1, start_job_group_id=1),
             _instance(c, "w-hc1", "highcpu", True), _instance(c, "w-np1", "highcpu-np", False))
    c.run(1, "r-1a", "w-hc1", "Failed", "out_of_memory", 137, LOWMEM)
    c.run(1, "r-1b", "w-hc1", "Success", None, 0, 2 * LOWMEM, took_ms=30_000)
    c.run(2, "r-2a", "w-hc1", "Failed", "nonzero_exit", 42, LOWMEM)
    c.t += 2_000  # its backoff
    c.run(2, "r-2b", "w-hc1", "Failed", "nonzero_exit", 42, LOWMEM)
    c.t += 4_000
    c.run(2, "r-2c", "w-hc1", "Success", None, 0, LOWMEM, took_ms=20_000)
    c.run(4, "r-4a", "w-hc1", "Failed", "out_of_memory", 137, LOWMEM)
    c.run(4, "r-4b", "w-hc1", "Failed", "out_of_memory", 137, 2 * LOWMEM)
    c.run(3, "r-3a", "w-hc1", "", "", None, LOWMEM, ends=False)
    c.append(ev.InstanceDeactivated(**c.env("id"), instance_name="w-hc1", reason="preempted"))  # type: ignore[arg-type]
    c.append(ev.JobAttemptCompleted(**c.env("mjc"), batch_id=RETRY_BATCH, job_id=3, attempt_id="r-3a",  # type: ignore[arg-type]
                                    instance_name="w-hc1", outcome="Error", exit_code=None, failure_cause="preempted",
                                    error="instance w-hc1 was preempted", out_of_memory=False, ended_at=c.t, steps=()))
    c.t += 2_000
    c.run(3, "r-3b", "w-np1", "", "", None, LOWMEM, ends=False)
    c.t += 60_000  # its worker's billing update: the running retry is billed as non-preemptible
    c.append(ev.RunningAttemptsReported(**c.env("ra"), batch_id=RETRY_BATCH, instance_name="w-np1",  # type: ignore[arg-type]
                                        running_at=c.t, attempts=(ev.RunningAttempt(job_id=3, attempt_id="r-3b"),)))
    return c.log


def seed_retry_batch(url: str) -> list[ev.Event]:
    """Fold the batch's events into the read model at `url` (and make it alice's in the front's table)."""
    events = retry_events()
    model = ReadModel()
    for offset, event in enumerate(events):
        # the batch's partition of its own (the main seed's audit rows sit in partition 0)
        model.apply_all(convert(event, Position("squall.batch" if event.TOPIC == "batch" else "squall.instance",
                                                RETRY_BATCH % 8, offset)))

    async def store() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await write(conn, model)
            await conn.commit()

    asyncio.run(store())
    batch = model.rows["batches"][(RETRY_BATCH,)]
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO front_batches (batch_id, user_name, billing_project, token, attributes, time_created, "
                     "n_updates, n_committed_jobs) VALUES (%s, 'alice', 'test', 'retry-demo', %s, %s, 1, 4)",
                     (RETRY_BATCH, '{"name": "retry-demo"}', batch["time_created"]))
    return events
