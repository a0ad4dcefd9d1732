"""Lifecycle core benchmarks (issue 3): fold throughput and memory per queued job.

    python tests/bench/bench_core.py [--fold-jobs N] [--queued-jobs N]

- fold: decoded events of whole batches (create, commit, ready, SJ, MJS, MJC, completed) through
  evolve, in log order, with react after every chunk of 1,000 events as the resolver does
  (goal: >= 200,000 events/s);
- memory per queued job: tracemalloc over 50,000 committed Pending jobs of one batch, each with a
  decoded spec of its own (goal: <= 1 KiB).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from events.catalog import (  # noqa: E402
    BatchCreated,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    Event,
    JobAttemptCompleted,
    JobAttemptScheduled,
    JobAttemptStarted,
    JobCreated,
    JobSpec,
    Resources,
)
from events.codec import Codec  # noqa: E402
from events.core.lifecycle import BatchState, evolve, react  # noqa: E402
from projections.runner import tune_gc_for_batches  # noqa: E402

T0 = 1_700_000_000_000


def spec(i: int) -> JobSpec:
    return JobSpec(process_type="docker", image="ubuntu:24.04", command=("bash", "-c", f"echo job {i}"), env=(),
                   input_files=(), output_files=(), always_copy_output=False, network="public",
                   resources=Resources(cores_mcpu=250, memory_bytes=966_367_641, storage_gib=0,
                                       preemptible=True, worker_type="standard"))


def batch_events(batch_id: int, n_jobs: int) -> list[Event]:
    """A batch of independent jobs, created and committed (what the front end appends)."""
    env = {"occurred_at": T0, "producer": "front/1", "batch_id": batch_id}
    events: list[Event] = [
        BatchCreated(event_id=f"b{batch_id}", user="u", billing_project="bp", token="t", attributes={}, **env),
        BatchUpdateCreated(event_id=f"u{batch_id}", update_id=1, token="u", n_jobs=n_jobs, n_job_groups=0,
                           start_job_id=1, start_job_group_id=1, **env)]
    events += [JobCreated(event_id=f"j{batch_id}.{j}", job_id=j, update_id=1, job_group_id=0,
                          parent_ids=(j - 1,) if j % 10 else (), always_run=False, n_max_attempts=3, user="u",
                          billing_project="bp", attributes={"name": f"job-{j}"}, spec=spec(j), spec_json="{}",
                          **env)
               for j in range(1, n_jobs + 1)]
    events.append(BatchUpdateCommitted(event_id=f"c{batch_id}", update_id=1, n_jobs=n_jobs, n_job_groups=0,
                                       start_job_id=1, start_job_group_id=1, **env))
    return events


def decoded(events: list[Event]) -> list[Event]:
    """Round-trip through the codec so strings and tuples are per-event objects, as off the log."""
    codec = Codec()
    return [codec.decode(codec.encode(e)) for e in events]


class Driver:
    """Folds a batch through its whole life, reacting every `chunk` events like the resolver."""

    def __init__(self, chunk: int = 1_000) -> None:
        self.chunk = chunk
        self.state: BatchState | None = None
        self.n_events = 0
        self.since_react = 0

    def apply(self, events: list[Event]) -> list[Event]:
        derived: list[Event] = []
        for e in events:
            self.state = evolve(self.state, e)
            self.n_events += 1
            self.since_react += 1
            if self.since_react >= self.chunk:
                derived += self.react()
        return derived + self.react()

    def react(self) -> list[Event]:
        self.since_react = 0
        assert self.state is not None
        out = react(self.state, "bench")
        self.state.clear_dirty()
        return out

    def run_to_completion(self, events: list[Event]) -> None:
        """Apply the front end's events, then play scheduler and worker until the batch completes."""
        pending = self.apply(events)
        attempt = 0
        while pending:
            follow: list[Event] = [e for e in pending if e.TOPIC == "batch"]
            for e in pending:
                if e.SCHEMA_NAME == "JobBecameReady":
                    attempt += 1
                    follow.append(JobAttemptScheduled(
                        event_id=f"sj{attempt}", occurred_at=T0, producer="sched", batch_id=e.batch_id,
                        job_id=e.job_id, attempt_id=f"a{attempt}", instance_name="i-1", scheduler_epoch=1,
                        user="u", cores_mcpu=250, memory_bytes=2**30, storage_gib=0, awaits_verdict=True))
                elif e.SCHEMA_NAME == "AttemptAssigned":
                    common = {"occurred_at": T0, "producer": "worker", "batch_id": e.batch_id, "job_id": e.job_id,
                              "attempt_id": e.attempt_id, "instance_name": e.instance_name}
                    follow.append(JobAttemptStarted(event_id=f"s{e.attempt_id}", started_at=T0, **common))
                    follow.append(JobAttemptCompleted(event_id=f"c{e.attempt_id}", outcome="Success", exit_code=0,
                                                      out_of_memory=False, started_at=T0, ended_at=T0 + 5, steps=(),
                                                      **common))
            pending = self.apply(follow)


def bench_fold(n_jobs: int) -> None:
    # 1) a whole life, recorded once, then re-folded from scratch: a pure fold (what a rebuild does)
    live = Driver()
    front = decoded(batch_events(1, n_jobs))
    log: list[Event] = []
    original_evolve = live.apply

    def recording_apply(events: list[Event]) -> list[Event]:
        log.extend(events)
        return original_evolve(events)

    live.apply = recording_apply  # type: ignore[method-assign]
    started = time.perf_counter()
    live.run_to_completion(front)
    live_s = time.perf_counter() - started
    assert live.state is not None and live.state.complete and live.state.n_succeeded == n_jobs
    print(f"live resolve (evolve + react + simulated SJ/MJS/MJC): {live.n_events:,} events over {n_jobs:,} jobs "
          f"in {live_s:.2f}s = {live.n_events / live_s:,.0f} events/s")

    log = decoded(log)
    gc.collect()
    started = time.perf_counter()
    state = None
    for e in log:
        state = evolve(state, e)
    fold_s = time.perf_counter() - started
    assert state is not None and state.complete
    print(f"fold (rebuild from the log, evolve only): {len(log):,} events in {fold_s:.2f}s = "
          f"{len(log) / fold_s:,.0f} events/s   (goal >= 200,000/s)")
    started = time.perf_counter()
    assert react(state, "bench", everything=True) == []
    print(f"react over everything after the rebuild: {time.perf_counter() - started:.3f}s for {n_jobs:,} jobs")


def bench_memory(n_jobs: int) -> None:
    """What the state keeps per job once the log's events are gone (their specs stay, held by jobs)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    state = None
    for e in decoded(batch_events(2, n_jobs)):
        state = evolve(state, e)
    del e
    assert state is not None and state.n_jobs == n_jobs
    state.clear_dirty()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"memory per queued (Pending, committed) job: {total / n_jobs:,.0f} bytes over {n_jobs:,} jobs, "
          f"its decoded spec included   (goal <= 1,024)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold-jobs", type=int, default=20_000, help="jobs in the batch whose life is folded")
    parser.add_argument("--queued-jobs", type=int, default=50_000, help="pending jobs for the memory measure")
    args = parser.parse_args()
    bench_memory(args.queued_jobs)
    tune_gc_for_batches(young=50_000)  # as the resolver process does
    bench_fold(args.fold_jobs)


if __name__ == "__main__":
    main()
