"""A read-model database seeded with two users' batches, and squall's bucket (in the session's GCS-API
server) with one attempt's logs and usage.

The schema is the real one: projections/migrations plus services/front/migrations, applied with
projections.db.migrate, so the UI is tested against the tables the projections and front end create.

alice (token ALICE_TOKEN):
  batch 1 "nightly-align", running: job 1 Success (2 attempts: instance lost, then success; logs and
           usage in the store), job 2 Running (its log's chunks so far in the store; its instance w-1
           announced no agent endpoint), job 3 Ready (a scheduling explanation),
           job 4 Failed (exit 1); jobs 1-2 in the root group, job 3 in align › stage-1 (group 2),
           job 4 in align › stage-2 (group 3)
  batch 2 complete and successful, one job;   batch 4 deleted (never shown)
bob (token BOB_TOKEN): batch 3, which alice must never see.
Instances: w-1 and w-2 active in pool "standard" (w-2 a standing worker), w-3 deleted; two autoscaler
decisions for pool "standard" (pool_decisions), the last held back at max_live_instances.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from events.catalog import (
    JobAttemptCompleted,
    PoolInstanceChoice,
    PoolScalingDecided,
    PoolWindowUser,
    PoolZoneWeight,
    StepTiming,
)
from events.log import Position
from events.objectstore.gcs import GcsObjectStore
from events.objectstore.layout import log_chunk_key, log_key, resource_usage_key
from projections.db import READMODEL_MIGRATIONS, migrate
from projections.readmodel.convert import convert, worker_status
from projections.readmodel.ops import RecordPoolDecision
from services.jobdata import JobData
from services.webui import create_ui
from worker.runtime import UsageSample
from worker.usage import UsageSeries

FRONT_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "front" / "migrations"
ALICE_TOKEN = "alice-secret-token"
BOB_TOKEN = "bob-secret-token"
T0 = 1_764_000_000_000  # ms
MAIN_LOG = "aligning reads...\n<script>alert('x')</script>\ndone\n"
# what the read model bills per Hail resource (projections/cost.py): batch 1 = job 1 + job 2 (running)
JOB_1_BREAKDOWN = {"compute/n1-preemptible/1": 0.0046, "disk/local-ssd/preemptible/1": 0.0001,
                   "memory/n1-preemptible/1": 0.0021, "service-fee/1": 0.0032}
BATCH_1_BREAKDOWN = {"compute/n1-preemptible/1": 0.0061, "disk/local-ssd/preemptible/1": 0.0001,
                     "memory/n1-preemptible/1": 0.0021, "service-fee/1": 0.0040}


def _insert(conn: psycopg.Connection, table: str, **row: object) -> None:
    columns = ", ".join(f'"{c}"' for c in row)
    marks = ", ".join(["%s"] * len(row))
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in row.values()]
    conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", values)


def _batch(conn: psycopg.Connection, batch_id: int, user: str, **kw: object) -> None:
    """The front end's row (ownership, visibility) and the read model's row (counters)."""
    row: dict[str, object] = dict(batch_id=batch_id, user=user, billing_project="test", token=f"t{batch_id}",
                                  attributes={}, state="running", time_created=T0 + batch_id, time_closed=T0 + 10)
    row.update(kw)
    _insert(conn, "batches", **row)
    _insert(conn, "front_batches", batch_id=batch_id, user_name=user, billing_project=row["billing_project"],
            token=row["token"], attributes=row["attributes"], time_created=row["time_created"],
            cancelled=row.get("cancelled", False), deleted=row.get("deleted", False), n_updates=1,
            n_committed_jobs=row.get("n_jobs", 0))


def _job(conn: psycopg.Connection, batch_id: int, job_id: int, user: str, state: str, **kw: object) -> None:
    row: dict[str, object] = dict(
        batch_id=batch_id, job_id=job_id, job_group_id=0, update_id=1, name=f"job-{job_id}", user=user,
        billing_project="test", state=state, committed=True, always_run=False, n_max_attempts=3,
        attributes={"name": f"job-{job_id}"}, spec={"process": {"type": "docker", "image": "ubuntu:24.04",
                                                                "command": ["bash", "-c", "echo hi"]}},
        cores_mcpu=1000, memory_bytes=3_750_000_000, storage_gib=0, preemptible=True, worker_type="standard",
        time_created=T0)
    row.update(kw)
    parent_ids = row.pop("parent_ids", [])
    columns = ", ".join(f'"{c}"' for c in row) + ", parent_ids"
    marks = ", ".join(["%s"] * len(row)) + ", %s"
    values = [json.dumps(v) if isinstance(v, dict) else v for v in row.values()] + [parent_ids]
    conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", values)


def job_1_status() -> dict[str, object]:
    """The status the read-model projection stores for job 1's successful attempt (its own converter)."""
    completed = JobAttemptCompleted(
        event_id="mjc-1", occurred_at=T0 + 95_000, producer="test", batch_id=1, job_id=1, attempt_id="a-1b",
        instance_name="w-1", outcome="Success", exit_code=0, out_of_memory=False, started_at=T0 + 5_000,
        ended_at=T0 + 95_000, steps=(StepTiming(name="main", state="succeeded", started_at=T0 + 5_000,
                                                ended_at=T0 + 95_000, exit_code=0),))
    return worker_status(completed)


def pool_decisions() -> list[PoolScalingDecided]:
    """Two decisions of pool standard: a standing worker for the minimum, then growth held at max_live_instances
    (zone local-b refused a creation, so its weight fell)."""
    common = dict(producer="autoscaler/local", pool="standard", paused_until=None, future_mcpu=400_000,
                  window_ms=150_000, min_instances=1, max_live_instances=2, max_instances=3, max_new_per_loop=2,
                  worker_cores=4, standing_worker_cores=4)
    first = PoolScalingDecided(
        event_id="psd-1", occurred_at=T0 + 1_000, requested=0, standing_requested=1, deleted=0, limited_by=None,
        ready_mcpu=0, demand_mcpu=0, demand_truncated=False, free_mcpu=0, pending_mcpu=0, live=1, pending=0,
        inactive=0, users=(), zones=(PoolZoneWeight(zone="local-a", successes=0, attempts=0, weight=0.5),
                                     PoolZoneWeight(zone="local-b", successes=0, attempts=0, weight=0.5)),
        instances=(PoolInstanceChoice(instance_name="w-2", zone="local-a", standing=True),), **common)
    second = PoolScalingDecided(
        event_id="psd-2", occurred_at=T0 + 8_000, requested=1, standing_requested=0, deleted=0,
        limited_by="max_live_instances", ready_mcpu=12_000, demand_mcpu=12_000, demand_truncated=False,
        free_mcpu=2_000, pending_mcpu=0, live=1, pending=0, inactive=1,
        users=(PoolWindowUser(user="alice", share_mcpu=12_000, jobs_per_pass=300, window_jobs=45_000, n_jobs=3,
                              demand_mcpu=12_000),),
        zones=(PoolZoneWeight(zone="local-a", successes=1, attempts=1, weight=2 / 3),
               PoolZoneWeight(zone="local-b", successes=0, attempts=1, weight=1 / 3)),
        instances=(PoolInstanceChoice(instance_name="w-1", zone="local-a", standing=False),), **common)
    return [first, second]


@dataclass(frozen=True)
class UiDb:
    url: str
    storage_endpoint: str
    bucket: str  # squall's own bucket for these tests

    def put(self, key: str, data: bytes) -> None:
        async def put() -> None:
            store = GcsObjectStore(endpoint=self.storage_endpoint)
            try:
                await store.create_bucket(self.bucket)
                await store.put(self.bucket, key, data)
            finally:
                await store.close()
        asyncio.run(put())


def seed(db: UiDb) -> None:
    url = db.url
    migrate(url, [READMODEL_MIGRATIONS, FRONT_MIGRATIONS])
    with psycopg.connect(url) as conn:
        for name, token in (("alice", ALICE_TOKEN), ("bob", BOB_TOKEN)):
            _insert(conn, "front_users", name=name, created_at=T0, is_operator=name == "alice")
            _insert(conn, "front_tokens", token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                    user_name=name, created_at=T0)

        _batch(conn, 1, "alice", attributes={"name": "nightly-align", "env": "prod"}, n_jobs=4, n_completed=2,
               n_succeeded=1, n_failed=1, msec_mcpu=90_000_000, cost=0.0123, cost_breakdown=BATCH_1_BREAKDOWN)
        _job(conn, 1, 1, "alice", "Success", exit_code=0, n_attempts=2, current_attempt_id="a-1b",
             start_time=T0 + 5_000, end_time=T0 + 95_000, duration_ms=90_000, cost=0.01,
             cost_breakdown=JOB_1_BREAKDOWN, status=job_1_status())
        _job(conn, 1, 2, "alice", "Running", n_attempts=1, current_attempt_id="a-2", start_time=T0 + 6_000,
             cost=0.0023, cost_breakdown={"compute/n1-preemptible/1": 0.0015, "service-fee/1": 0.0008})
        _job(conn, 1, 3, "alice", "Ready", parent_ids=[1], job_group_id=2)
        _job(conn, 1, 4, "alice", "Failed", exit_code=1, n_attempts=1, current_attempt_id="a-4",
             start_time=T0 + 7_000, end_time=T0 + 8_000, duration_ms=1_000, job_group_id=3)
        # Hail's counters: a group counts its own jobs and its descendants'
        for group_id, parent, ancestors, name, counts in (
                (0, None, [0], None, dict(n_jobs=4, n_completed=2, n_succeeded=1, n_failed=1, cost=0.0123,
                                          cost_breakdown=BATCH_1_BREAKDOWN, msec_mcpu=90_000_000)),
                (1, 0, [1, 0], "align", dict(n_jobs=2, n_completed=1, n_failed=1)),
                (2, 1, [2, 1, 0], "stage-1", dict(n_jobs=1)),
                (3, 1, [3, 1, 0], "stage-2", dict(n_jobs=1, n_completed=1, n_failed=1))):
            _insert(conn, "job_groups", batch_id=1, job_group_id=group_id, parent_job_group_id=parent,
                    ancestor_ids="{" + ",".join(map(str, ancestors)) + "}", update_id=1,
                    attributes={"name": name} if name else {}, state="running", time_created=T0, **counts)
        _insert(conn, "attempts", batch_id=1, job_id=1, attempt_id="a-1a", instance_name="w-3",
                scheduled_at=T0 + 1_000, start_time=T0 + 1_500, end_time=T0 + 4_000, outcome="Error",
                failure_cause="instance_lost", error="instance lost", cores_mcpu=1000)
        _insert(conn, "attempts", batch_id=1, job_id=1, attempt_id="a-1b", instance_name="w-1",
                scheduled_at=T0 + 4_500, start_time=T0 + 5_000, end_time=T0 + 95_000, outcome="Success",
                exit_code=0, cores_mcpu=1000)
        _insert(conn, "attempts", batch_id=1, job_id=2, attempt_id="a-2", instance_name="w-1",
                scheduled_at=T0 + 5_500, start_time=T0 + 6_000, cores_mcpu=2000)
        _insert(conn, "attempts", batch_id=1, job_id=4, attempt_id="a-4", instance_name="w-2",
                scheduled_at=T0 + 6_500, start_time=T0 + 7_000, end_time=T0 + 8_000, outcome="Failed",
                exit_code=1, failure_cause="nonzero_exit", cores_mcpu=1000)
        _insert(conn, "scheduling_explanations", batch_id=1, job_id=3, reason_code="over_fair_share",
                message="alice is using her fair share of 2 cores", updated_at=T0 + 9_000)
        for offset, (event, attempt) in enumerate([("JobCreated", None), ("JobBecameReady", None),
                                                   ("JobAttemptScheduled", "a-1a"), ("JobAttemptCompleted", "a-1a"),
                                                   ("JobAttemptScheduled", "a-1b"), ("JobCompleted", "a-1b")]):
            _insert(conn, "audit", batch_id=1, job_id=1, topic="squall.batch", partition=0, offset=offset,
                    event_type=event, event_id=f"e{offset}", occurred_at=T0 + offset, producer="test",
                    attempt_id=attempt)

        _batch(conn, 2, "alice", state="complete", n_jobs=1, n_completed=1, n_succeeded=1,
               time_completed=T0 + 60_000)
        _job(conn, 2, 1, "alice", "Success", exit_code=0)
        _batch(conn, 3, "bob", attributes={"name": "bobs-batch"}, n_jobs=1)
        _job(conn, 3, 1, "bob", "Running")
        _batch(conn, 4, "alice", deleted=True, attributes={"name": "deleted-batch"})

        for name, state, zone in (("w-1", "active", "local-a"), ("w-2", "active", "local-a"),
                                  ("w-3", "deleted", "local-b")):
            _insert(conn, "instances", name=name, pool="standard", provider="local", state=state, cores_mcpu=4000,
                    memory_bytes=16 << 30, storage_gib=100, region="local", preemptible=False,
                    last_heartbeat=T0 + 9_000, zone=zone, standing=name == "w-2")
        for offset, decision in enumerate(pool_decisions()):
            op = convert(decision, Position("squall.instance-events", 1, offset))[0]
            assert isinstance(op, RecordPoolDecision)
            _insert(conn, "pool_decisions", topic=op.topic, partition=op.partition, offset=op.offset, pool=op.pool,
                    event_id=op.event_id, occurred_at=op.occurred_at, producer=op.producer, decision=op.decision)

    db.put(log_key(1, 1, "a-1b", "main"), MAIN_LOG.encode())
    db.put(log_chunk_key(1, 2, "a-2", "main", 0), b"step 1 of 3\n")  # shipped so far by a running step
    usage = UsageSeries()  # what the worker writes: cpu from cumulative ns, memory growing
    for i in range(10):
        usage.add(T0 + 5_000 + i * 1_000, UsageSample(cpu_usage_ns=i * i * 50_000_000, memory_bytes=(100 + 10 * i) << 20),
                  io_bytes=0)
    db.put(resource_usage_key(1, 1, "a-1b", "main"), usage.to_json())


def sign_in(client: TestClient, token: str = ALICE_TOKEN) -> None:
    answer = client.post("/ui/login", data={"token": token, "next": "/ui/batches"})
    assert answer.status_code == 303, answer.text


class RecordingTransport:
    """Stands in for the API in-process: records each request and answers 200 (or `status`)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str, str | None]] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append((request.method, request.url.path, request.headers.get("authorization")))
            return httpx.Response(self.status, json={})
        return httpx.MockTransport(handle)


@contextmanager
def mounted_ui(ui_db: UiDb, api: RecordingTransport, page_size: int = 50,
               query_version: int = 2) -> Iterator[TestClient]:
    store = GcsObjectStore(endpoint=ui_db.storage_endpoint)
    ui = create_ui(ui_db.url, JobData(store, ui_db.bucket), api_transport=api.transport(), page_size=page_size,
                   query_version=query_version)
    front = Starlette(routes=[Mount("/ui", app=ui)])
    try:
        with TestClient(front, follow_redirects=False) as test_client:
            yield test_client
    finally:
        asyncio.run(store.close())
