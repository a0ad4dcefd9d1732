"""Isolated workers against shared ones, in the same run: end-to-end jobs/s and submit→start latency.

    python tests/bench/bench_isolation.py [--workers 2] [--jobs 100] [--latency-jobs 20] [--rounds 2]

One secured broker (its worker listener on the fleet LAN's gateway) and one PostgreSQL serve two
stacks, up at the same time, identical but for `isolated_workers`: shared (every worker agent on
this machine, one podman service) and isolated (each worker a host of its own with its own podman
service, deploy/worker_hosts.py). Measurements alternate between them (ABBA over --rounds), so
the machine's changing load falls on both alike. For each stack, once its workers are up and a
warm-up job has run:
- workers ready: seconds from `stack.up` returning to every warm worker serving (its host made, its
  agent connected, its podman service and job networks up);
- throughput: one batch of --jobs no-op jobs (busybox `true`, 0.25 cpu: 16 at a time on two 2-core
  workers), jobs / (batch completed - batch created), from the read model's own timestamps;
- latency: --latency-jobs single-job batches, one after another on idle workers: the attempt's
  start time (the worker's JobAttemptStarted) minus the batch's creation, p50 and p95;
- job run: each attempt's end minus start (the container's life as the worker reports it).
Needs root and podman (deploy/podman/setup.sh); leaves nothing running.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from deploy import stack  # noqa: E402
from deploy.fleet_lan import GATEWAY, FleetLan, Holder  # noqa: E402
from deploy.kafka import KafkaBroker  # noqa: E402
from deploy.kafka_auth import KafkaAuth  # noqa: E402
from deploy.postgres import EmbeddedPostgres, create_database  # noqa: E402
from deploy.worker_hosts import WorkerHosts  # noqa: E402
from services.front.stack_user import ensure_stack_user  # noqa: E402

SMALL = {"cpu": "0.25", "memory": "standard"}  # the standard pool: the warm workers


def spec(job_id: int, command: list[str]) -> dict:
    return {"job_id": job_id, "process": {"type": "docker", "image": "localhost/busybox:latest", "command": command},
            "in_update_parent_ids": [], "resources": SMALL}


class Client:
    def __init__(self, state: stack.StackState) -> None:
        self.state = state
        self.http = httpx.Client(base_url=f"{state.api_url}/api/v1alpha",
                                 headers={"Authorization": f"Bearer {state.token}"}, timeout=60.0)

    def submit(self, jobs: list[dict]) -> int:
        body = {"batch": {"billing_project": self.state.billing_project, "token": uuid.uuid4().hex,
                          "n_jobs": len(jobs)}, "bunch": jobs, "job_groups": []}
        return int(self.http.post("/batches/create-fast", json=body).raise_for_status().json()["id"])

    def wait(self, batch_id: int, timeout_s: float = 900.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            b = self.http.get(f"/batches/{batch_id}").raise_for_status().json()
            if b["complete"]:
                assert b["state"] == "success", b
                return b
            time.sleep(0.2)
        raise TimeoutError(f"batch {batch_id} did not complete in {timeout_s:.0f} s")


def workers_ready(home: Path, n: int, timeout_s: float = 300.0) -> float:
    """Seconds until n workers run and serve their live-log endpoints (written once the agent is up)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        workers = [w for w in stack.status(home)["workers"] if w["pid"]]  # type: ignore[index]
        if len(workers) >= n and all((home / "instances" / str(w["name"]) / "agent-port").exists() for w in workers):
            return time.monotonic() - start
        time.sleep(0.2)
    raise TimeoutError(f"{n} workers not ready in {timeout_s:.0f} s")


def timings(database_url: str, batch_ids: list[int]) -> tuple[list[int], dict[int, int], list[int]]:
    """Per job: attempt start - batch created; per batch: completed - created; per attempt: end - start (ms)."""
    with psycopg.connect(database_url) as conn:
        starts = conn.execute("SELECT a.start_time - f.time_created, a.end_time - a.start_time FROM attempts a "
                              "JOIN front_batches f ON f.batch_id = a.batch_id "
                              "WHERE a.batch_id = ANY(%s) AND a.start_time IS NOT NULL", (batch_ids,)).fetchall()
        spans = conn.execute("SELECT b.batch_id, b.time_completed - f.time_created FROM batches b JOIN front_batches f "
                             "ON f.batch_id = b.batch_id WHERE b.batch_id = ANY(%s)", (batch_ids,)).fetchall()
    return ([int(r[0]) for r in starts], {int(r[0]): int(r[1]) for r in spans},
            [int(r[1]) for r in starts if r[1] is not None])


def pct(values: list[int], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else float(values[0])


class Run:
    """One stack under test and what was measured on it."""

    def __init__(self, mode: str, client: Client, db: str, ready_s: float) -> None:
        self.mode, self.client, self.db, self.ready_s = mode, client, db, ready_s
        self.jobs_per_s: list[float] = []
        self.starts: list[int] = []
        self.runs: list[int] = []

    def measure(self, jobs: int, singles: int) -> None:
        batch = self.client.submit([spec(i, ["true"]) for i in range(1, jobs + 1)])
        self.client.wait(batch)
        _, spans, runs = timings(self.db, [batch])
        self.jobs_per_s.append(jobs / (spans[batch] / 1000))
        self.runs += runs
        ids = []
        for _ in range(singles):
            ids.append(self.client.submit([spec(1, ["true"])]))
            self.client.wait(ids[-1])
        starts, _, _ = timings(self.db, ids)
        self.starts += starts


def bring_up(mode: str, broker: KafkaBroker, credentials: Path, pg_url: str, workers: int,
             homes: list[Path]) -> Run:
    home = Path(tempfile.mkdtemp(prefix=f"squall-bench-{mode}-"))
    homes.append(home)
    db = create_database(pg_url, f"bench_{uuid.uuid4().hex[:10]}")
    state = stack.up(home, bootstrap=broker.bootstrap, database_url=db, port=stack.free_port(),
                     topic_prefix=f"b{uuid.uuid4().hex[:8]}.", workers=workers, worker_cores=2,
                     kafka_credentials=credentials, worker_bootstrap=broker.external_bootstrap,
                     isolated_workers=mode == "isolated", say=lambda m: None, ensure_user=ensure_stack_user)
    client = Client(state)
    ready_s = workers_ready(home, workers)
    client.wait(client.submit([spec(1, ["true"])]))  # warm-up: images inspected, job networks made
    return Run(mode, client, db, ready_s)


def tear_down(home: Path) -> None:
    try:
        stack.down(home, say=lambda m: None)
    finally:
        WorkerHosts(home).destroy_all()
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--jobs", type=int, default=100)
    p.add_argument("--latency-jobs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if os.geteuid() != 0 or shutil.which("podman") is None:
        print("bench_isolation: needs root and podman (deploy/podman/setup.sh); skipped")
        return
    data = Path(tempfile.mkdtemp(prefix="squall-bench-isolation-"))
    lan, holder = FleetLan(), Holder.process()
    lan.acquire(holder)
    auth = KafkaAuth.load_or_create(data / "auth")
    broker = KafkaBroker(data / "kafka", security=auth.broker_security([GATEWAY]))
    pg = EmbeddedPostgres(data / "pg")
    runs: list[Run] = []
    homes: list[Path] = []
    try:
        (data / "kafka").mkdir(parents=True)
        holder = Holder.process([int(broker.external_bootstrap.rsplit(":", 1)[1])])
        lan.acquire(holder)
        broker.start()
        auth.write_credentials(data / "credentials", tls_roles={"worker"})
        pg_url = pg.start()
        for mode in ("shared", "isolated"):
            runs.append(bring_up(mode, broker, data / "credentials", pg_url, args.workers, homes))
        for i in range(args.rounds):  # both stacks up; ABBA order, so drifting load falls on both alike
            for run in (runs if i % 2 == 0 else runs[::-1]):
                run.measure(args.jobs, args.latency_jobs)
        load = os.getloadavg()[0]
    finally:
        for run in runs:
            run.client.http.close()
        for home in homes:
            tear_down(home)
        broker.stop()
        pg.stop()
        lan.release(holder)
        shutil.rmtree(data, ignore_errors=True)
    print(f"{args.workers} workers x 2 cores per stack, both stacks up, {args.rounds} rounds in ABBA order; "
          f"throughput: {args.jobs} no-op jobs in one batch per round; latency: {args.latency_jobs} single-job "
          f"batches per round on idle workers (load average at the end {load:.1f})")
    print(f"{'workers':10} {'ready (s)':>10} {'jobs/s per round':>18} {'submit->start p50/p95 (ms)':>27} "
          f"{'job run p50/p95 (ms)':>21}")
    for r in runs:
        rates = " ".join(f"{x:.2f}" for x in r.jobs_per_s)
        print(f"{r.mode:10} {r.ready_s:10.1f} {rates:>18} {pct(r.starts, 50):>17.0f} / {pct(r.starts, 95):<7.0f} "
              f"{pct(r.runs, 50):>11.0f} / {pct(r.runs, 95):<7.0f}")


if __name__ == "__main__":
    main()
