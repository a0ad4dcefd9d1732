"""The callback service against a real Kafka broker and PostgreSQL, posting to a real HTTP receiver.

The log is what the front end, resolver, scheduler and worker would append for one batch (built
with the pure lifecycle); the read model is folded by the real projector, so the service sees
completions exactly as it does in a stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

from events.catalog import Event
from events.kafka_log import KafkaEventLog
from events.publisher import Publisher
from events.topics import Topics
from projections.readmodel.service import run_readmodel
from services.callback_policy import CallbackPolicy
from services.callbacks.deliveries import apply_migrations
from services.callbacks.service import CallbackService, CallbackSettings
from tests.unit.core.lifecycle_world import BATCH, USER, Builder, World

T0 = 1_700_000_000_000  # lifecycle_world's clock starts here


class Receiver:
    """A real HTTP server recording each POST; answers 503 on the paths in `failing`, 200 elsewhere."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.failing: set[str] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((self.path, json.loads(body)))
                self.send_response(503 if self.path in receiver.failing else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()


@pytest.fixture
def db(fresh_db: str) -> str:
    apply_migrations(fresh_db)
    with psycopg.connect(fresh_db) as conn:  # the front end's rows for batch 7: owner and committed jobs
        conn.execute("INSERT INTO front_batches (batch_id, user_name, billing_project, token, time_created, "
                     "n_updates, n_committed_jobs) VALUES (%s, %s, 'bp', 'tok', %s, 1, 2)", (BATCH, USER, T0))
        conn.execute("INSERT INTO front_job_groups (batch_id, job_group_id, update_id, parent_job_group_id, depth) "
                     "VALUES (%s, 0, NULL, NULL, 0), (%s, 1, 1, 0, 1)", (BATCH, BATCH))
    return fresh_db


class Stack:
    """The read-model projector and the callback service, running on one log and database."""

    def __init__(self, log: KafkaEventLog, topics: Topics, db: str) -> None:
        self.log, self.topics, self.db = log, topics, db
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, service_stop: asyncio.Event | None = None) -> None:
        self.tasks.append(asyncio.create_task(run_readmodel(self.log, self.topics, self.db, stop=self.stop)))
        self.start_callbacks(service_stop or self.stop)

    def start_callbacks(self, stop: asyncio.Event) -> None:
        # the receiver listens on loopback, which callbacks may reach only when the operator allows it
        fast = CallbackSettings(poll_timeout_ms=50, retry_delay_s=0.05, policy=CallbackPolicy.parse("127.0.0.1/32"))
        service = CallbackService(self.log, self.topics, self.db, fast, now_ms=lambda: T0)  # the events' era
        self.tasks.append(asyncio.create_task(service.run(stop)))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)


@pytest.fixture
async def stack(kafka_log: KafkaEventLog, topics: Topics, db: str) -> AsyncIterator[Stack]:
    s = Stack(kafka_log, topics, db)
    try:
        yield s
    finally:
        with contextlib.suppress(Exception):
            await s.close()


def batch_with_a_group(url: str) -> tuple[Builder, World, list[Event]]:
    """Batch 7 (callback /batch) with job 1 in the root group and job 2 in group 1 (callback /group),
    committed and both jobs ready: what is in the log before any job runs."""
    b, world = Builder(), World()
    events: list[Event] = [replace(b.batch(), callback=f"{url}/batch"),
                           b.update(1, n_jobs=2, start_job_id=1, n_job_groups=1),
                           replace(b.group(1), callback=f"{url}/group"),
                           b.job(1), b.job(2, group=1),
                           replace(b.commit(1, 2, 1), n_job_groups=1)]
    world.append(*events)
    return b, world, events + [e for e in world.settle() if e.TOPIC == "batch"]


def run_job(b: Builder, world: World, job_id: int, outcome: str = "Success") -> list[Event]:
    """The scheduler's, worker's and resolver's events for one attempt of the job."""
    attempt = f"a{job_id}"
    ran: list[Event] = [b.sj(job_id, attempt), b.mjs(job_id, attempt),
                        b.mjc(job_id, attempt, outcome, None if outcome == "Success" else "nonzero_exit",
                              0 if outcome == "Success" else 1)]
    world.append(*ran)
    return ran + [e for e in world.settle() if e.TOPIC == "batch"]


async def until(condition, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def deliveries(db: str) -> list[tuple]:
    with psycopg.connect(db) as conn:
        return conn.execute("SELECT job_group_id, n_jobs, status_code, error FROM callback_deliveries "
                            "ORDER BY job_group_id").fetchall()


async def test_group_then_batch_callbacks_fire_once_with_the_api_status(stack: Stack, receiver: Receiver) -> None:
    publisher = Publisher(stack.log, stack.topics)
    b, world, created = batch_with_a_group(receiver.url)
    await publisher.publish(created + run_job(b, world, 2))
    stack.start()
    await until(lambda: receiver.paths() == ["/group"])
    path, group_status = receiver.posts[0]
    assert group_status["batch_id"] == BATCH and group_status["job_group_id"] == 1
    assert group_status["complete"] is True and group_status["n_succeeded"] == 1

    await publisher.publish(run_job(b, world, 1, "Failed"))
    await until(lambda: receiver.paths() == ["/group", "/batch"])
    _, batch_status = receiver.posts[1]
    assert batch_status["id"] == BATCH and batch_status["user"] == USER
    assert batch_status["complete"] is True and batch_status["state"] == "failure"
    assert (batch_status["n_jobs"], batch_status["n_succeeded"], batch_status["n_failed"]) == (2, 1, 1)
    await until(lambda: [d[2] for d in deliveries(stack.db)] == [200, 200])
    assert deliveries(stack.db) == [(0, 2, 200, None), (1, 1, 200, None)]


async def test_a_restarted_service_does_not_fire_a_completion_again(stack: Stack, receiver: Receiver) -> None:
    publisher = Publisher(stack.log, stack.topics)
    b, world, created = batch_with_a_group(receiver.url)
    await publisher.publish(created + run_job(b, world, 2) + run_job(b, world, 1))
    first = asyncio.Event()
    stack.start(service_stop=first)
    await until(lambda: sorted(receiver.paths()) == ["/batch", "/group"])
    first.set()
    await asyncio.gather(stack.tasks.pop())  # the first service is gone; whatever it committed, a new one
    stack.start_callbacks(stack.stop)        # reads the log again from its group's offsets
    # a second update completes the batch again: that completion fires (once), the first never again
    with psycopg.connect(stack.db) as conn:
        conn.execute("UPDATE front_batches SET n_committed_jobs = 3, n_updates = 2 WHERE batch_id = %s", (BATCH,))
    update2 = b.dag({3: ()}, update_id=2, start_job_id=3)
    world.append(*update2)
    await publisher.publish(update2 + [e for e in world.settle() if e.TOPIC == "batch"] + run_job(b, world, 3))
    await until(lambda: receiver.paths().count("/batch") == 2)
    assert sorted(receiver.paths()) == ["/batch", "/batch", "/group"], "nothing fired twice, the new completion once"
    assert receiver.posts[-1][1]["n_jobs"] == 3


async def test_a_receiver_that_fails_is_retried_then_recorded(stack: Stack, receiver: Receiver) -> None:
    receiver.failing = {"/group"}  # every try of the group callback fails; the batch's succeeds
    publisher = Publisher(stack.log, stack.topics)
    b, world, created = batch_with_a_group(receiver.url)
    await publisher.publish(created + run_job(b, world, 2) + run_job(b, world, 1))
    stack.start()
    await until(lambda: len(deliveries(stack.db)) == 2 and all(d[2] is not None for d in deliveries(stack.db)))
    by_group = {d[0]: d for d in deliveries(stack.db)}
    assert receiver.paths().count("/group") == 3, "three tries"
    assert by_group[1][2:] == (503, "the receiver answered 503")
    assert by_group[0][2:] == (200, None)


async def test_completions_from_before_callbacks_were_first_enabled_are_not_posted(stack: Stack,
                                                                                   receiver: Receiver) -> None:
    publisher = Publisher(stack.log, stack.topics)
    b, world, created = batch_with_a_group(receiver.url)
    group_done = run_job(b, world, 2)
    batch_done = run_job(b, world, 1)
    [group_completed_at] = [e.occurred_at for e in group_done if e.SCHEMA_NAME == "JobCompleted"]
    with psycopg.connect(stack.db) as conn:  # callbacks were first turned on after group 1 completed
        conn.execute("INSERT INTO callbacks_enabled (since) VALUES (%s)", (group_completed_at + 1,))
    await publisher.publish(created + group_done + batch_done)
    stack.start()
    await until(lambda: receiver.paths() == ["/batch"])
    await until(lambda: [d[2] for d in deliveries(stack.db)] == [200])
    assert [d[0] for d in deliveries(stack.db)] == [0], "group 1 completed before: history, never posted"


async def test_many_callbacks_due_at_once_are_all_posted(stack: Stack, receiver: Receiver) -> None:
    """More callbacks due together than the service's database pool has connections (4)."""
    n_groups = 6
    b, world = Builder(), World()
    events: list[Event] = [replace(b.batch(), callback=f"{receiver.url}/batch"),
                           b.update(1, n_jobs=n_groups, start_job_id=1, n_job_groups=n_groups)]
    events += [replace(b.group(g), callback=f"{receiver.url}/group/{g}") for g in range(1, n_groups + 1)]
    events += [b.job(g, group=g) for g in range(1, n_groups + 1)]
    events.append(replace(b.commit(1, n_groups, 1), n_job_groups=n_groups))
    world.append(*events)
    events += [e for e in world.settle() if e.TOPIC == "batch"]
    for j in range(1, n_groups + 1):
        events += run_job(b, world, j)
    with psycopg.connect(stack.db) as conn:
        conn.execute("UPDATE front_batches SET n_committed_jobs = %s WHERE batch_id = %s", (n_groups, BATCH))
        for g in range(2, n_groups + 1):
            conn.execute("INSERT INTO front_job_groups (batch_id, job_group_id, update_id, parent_job_group_id, "
                         "depth) VALUES (%s, %s, 1, 0, 1)", (BATCH, g))
    await Publisher(stack.log, stack.topics).publish(events)
    stack.start()
    expected = sorted(["/batch"] + [f"/group/{g}" for g in range(1, n_groups + 1)])
    await until(lambda: sorted(receiver.paths()) == expected, timeout_s=60)
