"""Realistic, deterministic event streams for projection tests (no resolver, scheduler or worker needed).

    stream = build_stream(StreamShape(n_batches=10, jobs_per_batch=100), seed=7)
    for event in stream.events: ...

Each batch: BatchCreated, update 1 with a child job group, JobCreated for every job (a DAG: some
jobs depend on earlier ones), the commit, then each job's life in dependency order: ready,
scheduled (SJ and the resolver's JobAttemptAccepted), started, completed (MJC) and JobCompleted; some attempts lose their instance and are
retried with a new attempt, some jobs fail, some are cancelled without running, one batch may be
cancelled. Batches interleave in time. Instance events (requested..deleted, heartbeats) run
alongside. The same seed always gives the same events (ids and times included).
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass, field

from events import catalog as ev
from events.failures import INSTANCE_LOST, NONZERO_EXIT

PRODUCER = "tests/fakes"


@dataclass(frozen=True)
class StreamShape:
    n_batches: int = 5
    jobs_per_batch: int = 20
    n_instances: int = 4
    p_retry: float = 0.05      # an attempt loses its instance and the job gets a new attempt
    p_fail: float = 0.05       # the main container exits non-zero
    p_cancel: float = 0.03     # the job is cancelled before it runs
    p_parent: float = 0.3      # a job depends on an earlier job of its batch
    report_every_ms: int = 0   # > 0: workers' billing updates (RunningAttemptsReported) this often while
    #                            an attempt runs, and a late one after a lost attempt's MJC (ignored)
    start_ms: int = 1_760_000_000_000


@dataclass
class Stream:
    events: list[ev.Event] = field(default_factory=list)
    n_jobs: int = 0


def job_spec(cores_mcpu: int = 1000, memory_bytes: int = 3_750 * 1024**2, storage_gib: int = 0,
             preemptible: bool = True) -> ev.JobSpec:
    return ev.JobSpec(
        process_type="docker", image="ubuntu:24.04", command=("bash", "-c", "echo hello"), env=(),
        input_files=(), output_files=(), always_copy_output=False, network="public",
        resources=ev.Resources(cores_mcpu=cores_mcpu, memory_bytes=memory_bytes, storage_gib=storage_gib,
                               preemptible=preemptible, worker_type="standard"))


def spec_json(spec: ev.JobSpec) -> str:
    return json.dumps({"process": {"type": "docker", "image": spec.image, "command": list(spec.command)},
                       "resources": {"cores_mcpu": spec.resources.cores_mcpu,
                                     "memory_bytes": spec.resources.memory_bytes,
                                     "storage_gib": spec.resources.storage_gib,
                                     "preemptible": spec.resources.preemptible},
                       "n_max_attempts": 20, "always_run": False})


class _Batch:
    """Builds one batch's events in order; `ts` steps the batch's own clock."""

    def __init__(self, rng: random.Random, batch_id: int, shape: StreamShape, instances: list[str], t0: int) -> None:
        self.rng, self.b, self.shape, self.instances, self.t = rng, batch_id, shape, instances, t0
        self.out: list[ev.Event] = []
        self.seq = 0

    def ts(self, step_max: int = 500) -> int:
        self.t += self.rng.randint(1, step_max)
        return self.t

    def eid(self, kind: str) -> str:
        self.seq += 1
        return f"{kind}-{self.b}-{self.seq}"

    def build(self) -> list[ev.Event]:
        b, shape, rng = self.b, self.shape, self.rng
        user = f"user{b % 3}"
        n = shape.jobs_per_batch
        self.out.append(ev.BatchCreated(event_id=self.eid("bc"), occurred_at=self.ts(), producer=PRODUCER,
                                        batch_id=b, user=user, billing_project="test", token=f"tok-{b}",
                                        attributes={"name": f"batch {b}"}))
        self.out.append(ev.BatchUpdateCreated(event_id=self.eid("uc"), occurred_at=self.ts(), producer=PRODUCER,
                                              batch_id=b, update_id=1, token=f"ut-{b}", n_jobs=n,
                                              n_job_groups=1, start_job_id=1, start_job_group_id=1))
        self.out.append(ev.JobGroupCreated(event_id=self.eid("gc"), occurred_at=self.ts(), producer=PRODUCER,
                                           batch_id=b, update_id=1, job_group_id=1, parent_job_group_id=0,
                                           attributes={"name": "children"}))
        parents: dict[int, tuple[int, ...]] = {}
        for j in range(1, n + 1):
            ps = tuple(sorted({rng.randint(1, j - 1)})) if j > 1 and rng.random() < shape.p_parent else ()
            parents[j] = ps
            spec = job_spec(cores_mcpu=rng.choice((250, 500, 1000, 2000)), preemptible=rng.random() < 0.8,
                            storage_gib=rng.choice((0, 0, 10)))
            self.out.append(ev.JobCreated(
                event_id=self.eid("jc"), occurred_at=self.ts(5), producer=PRODUCER, batch_id=b, job_id=j,
                update_id=1, job_group_id=j % 2, parent_ids=ps, always_run=False, n_max_attempts=20,
                user=user, billing_project="test", attributes={"name": f"job {j}"}, spec=spec,
                spec_json=spec_json(spec)))
        self.out.append(ev.BatchUpdateCommitted(event_id=self.eid("cm"), occurred_at=self.ts(), producer=PRODUCER,
                                                batch_id=b, update_id=1, n_jobs=n, n_job_groups=1,
                                                start_job_id=1, start_job_group_id=1))
        counts = {"Success": 0, "Failed": 0, "Error": 0, "Cancelled": 0}
        for j in range(1, n + 1):
            counts[self._run_job(j, parents[j])] += 1
        self.out.append(ev.BatchCompleted(event_id=self.eid("bd"), occurred_at=self.ts(), producer=PRODUCER,
                                          batch_id=b, n_jobs=n, n_succeeded=counts["Success"],
                                          n_failed=counts["Failed"] + counts["Error"],
                                          n_cancelled=counts["Cancelled"]))
        return self.out

    def _run_job(self, j: int, parents: tuple[int, ...]) -> str:
        b, rng, shape = self.b, self.rng, self.shape
        if rng.random() < shape.p_cancel:
            self.out.append(ev.JobCancelled(event_id=self.eid("jx"), occurred_at=self.ts(), producer=PRODUCER,
                                            batch_id=b, job_id=j, reason="parent failed"))
            return "Cancelled"
        ready = ev.JobBecameReady(event_id=self.eid("jr"), occurred_at=self.ts(), producer=PRODUCER,
                                  batch_id=b, job_id=j, reason="parents complete")
        self.out.append(ready)
        attempt = 0
        while True:
            attempt += 1
            attempt_id = f"a{b}-{j}-{attempt}"
            instance = rng.choice(self.instances)
            sj = ev.JobAttemptScheduled(
                event_id=self.eid("sj"), occurred_at=self.ts(), producer=PRODUCER, causation_id=ready.event_id,
                batch_id=b, job_id=j, attempt_id=attempt_id, instance_name=instance, scheduler_epoch=1,
                user=f"user{b % 3}", cores_mcpu=1000, memory_bytes=3_750 * 1024**2, storage_gib=0,
                awaits_verdict=True)
            self.out.append(sj)
            self.out.append(ev.JobAttemptAccepted(  # the resolver's verdict, which the read models follow
                event_id=self.eid("ok"), occurred_at=sj.occurred_at, producer=PRODUCER, causation_id=sj.event_id,
                batch_id=b, job_id=j, attempt_id=attempt_id, instance_name=instance, state="Running",
                scheduler_epoch=1, cores_mcpu=sj.cores_mcpu, memory_bytes=sj.memory_bytes, storage_gib=0))
            started = self.ts()
            self.out.append(ev.JobAttemptStarted(event_id=self.eid("mjs"), occurred_at=started, producer=PRODUCER,
                                                 batch_id=b, job_id=j, attempt_id=attempt_id,
                                                 instance_name=instance, started_at=started))
            ended = self.ts(5000)
            if shape.report_every_ms:
                for at in range(started + shape.report_every_ms, ended, shape.report_every_ms):
                    self.out.append(self._report(instance, j, attempt_id, at))
            lost = rng.random() < shape.p_retry and attempt < 3
            failed = not lost and rng.random() < shape.p_fail
            outcome, cause, code = ("Error", INSTANCE_LOST, None) if lost else (
                ("Failed", NONZERO_EXIT, 1) if failed else ("Success", None, 0))
            mjc = ev.JobAttemptCompleted(
                event_id=self.eid("mjc"), occurred_at=self.ts(), producer=PRODUCER, batch_id=b, job_id=j,
                attempt_id=attempt_id, instance_name=instance, outcome=outcome, exit_code=code,
                failure_cause=cause, out_of_memory=False, started_at=started, ended_at=ended,
                steps=(ev.StepTiming(name="main", state="succeeded" if outcome == "Success" else "failed",
                                     started_at=started, ended_at=ended, exit_code=code),))
            self.out.append(mjc)
            if lost and shape.report_every_ms:  # the lost worker's report, late: the attempt ended already
                self.out.append(self._report(instance, j, attempt_id, ended + 1))
            if lost:
                ready = ev.JobBecameReady(event_id=self.eid("jr"), occurred_at=self.ts(), producer=PRODUCER,
                                          causation_id=mjc.event_id, batch_id=b, job_id=j,
                                          after_attempt_id=attempt_id, not_before=self.t + 1000, reason="retry")
                self.out.append(ready)
                continue
            self.out.append(ev.JobCompleted(event_id=self.eid("jd"), occurred_at=self.ts(), producer=PRODUCER,
                                            causation_id=mjc.event_id, batch_id=b, job_id=j, state=outcome,
                                            attempt_id=attempt_id, exit_code=code, reason=cause,
                                            n_attempts=attempt))
            return outcome


    def _report(self, instance: str, j: int, attempt_id: str, at: int) -> ev.RunningAttemptsReported:
        return ev.RunningAttemptsReported(
            event_id=self.eid("rr"), occurred_at=at, producer=PRODUCER, batch_id=self.b, instance_name=instance,
            running_at=at, attempts=(ev.RunningAttempt(job_id=j, attempt_id=attempt_id),))


def instance_events(rng: random.Random, names: list[str], t0: int, heartbeats: int = 3) -> list[ev.Event]:
    out: list[ev.Event] = []
    for i, name in enumerate(names):
        t = t0 + i
        out.append(ev.InstanceRequested(event_id=f"ir-{name}", occurred_at=t, producer=PRODUCER, instance_name=name,
                                        pool="standard", provider="local", machine_type="local-4",
                                        cores_mcpu=4000, memory_bytes=16 * 1024**3, storage_gib=100,
                                        preemptible=True, region="local"))
        out.append(ev.InstanceCreated(event_id=f"ic-{name}", occurred_at=t + 10, producer=PRODUCER,
                                      instance_name=name, provider="local", provider_id=f"pid-{i}"))
        out.append(ev.InstanceActivated(event_id=f"ia-{name}", occurred_at=t + 100, producer=PRODUCER,
                                        instance_name=name, pool="standard", cores_mcpu=4000,
                                        memory_bytes=16 * 1024**3, storage_gib=100, region="local",
                                        preemptible=True))
        for h in range(heartbeats):
            out.append(ev.InstanceHeartbeat(event_id=f"ih-{name}-{h}", occurred_at=t + 1000 * (h + 1),
                                            producer=PRODUCER, instance_name=name, running_attempt_ids=()))
        if rng.random() < 0.5:
            out.append(ev.InstanceDeactivated(event_id=f"id-{name}", occurred_at=t + 10_000, producer=PRODUCER,
                                              instance_name=name, reason="idle"))
            out.append(ev.InstanceDeleted(event_id=f"ix-{name}", occurred_at=t + 11_000, producer=PRODUCER,
                                          instance_name=name, reason="idle"))
    return out


def build_stream(shape: StreamShape | None = None, seed: int = 0, first_batch_id: int = 1) -> Stream:
    """Every batch's events, interleaved by time (each batch keeps its own order), plus instances."""
    shape = shape or StreamShape()
    rng = random.Random(seed)
    names = [f"inst-{seed}-{i}" for i in range(shape.n_instances)]
    per_batch = [_Batch(rng, first_batch_id + i, shape, names, shape.start_ms + rng.randint(0, 60_000)).build()
                 for i in range(shape.n_batches)]
    tagged = [(e.occurred_at, i, k, e) for i, events in enumerate(per_batch) for k, e in enumerate(events)]
    tagged += [(e.occurred_at, -1, k, e) for k, e in enumerate(instance_events(rng, names, shape.start_ms))]
    # sort by time, but a batch's own events keep their order (k) even if two share a time
    merged = _merge_keep_order(tagged)
    return Stream(events=merged, n_jobs=shape.n_batches * shape.jobs_per_batch)


def _merge_keep_order(tagged: list[tuple[int, int, int, ev.Event]]) -> list[ev.Event]:
    by_source: dict[int, list[tuple[int, int, int, ev.Event]]] = {}
    for item in tagged:
        by_source.setdefault(item[1], []).append(item)
    streams = [sorted(items, key=lambda x: x[2]) for items in by_source.values()]
    # each source is in its own order already; heapq.merge keeps it and interleaves by time
    return [item[3] for item in heapq.merge(*streams, key=lambda x: (x[0], x[1]))]
