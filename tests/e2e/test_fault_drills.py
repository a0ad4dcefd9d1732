"""Fault drill: with a batch running, SIGKILL each component of a local stack in turn — every
service, a worker agent, PostgreSQL and the Kafka broker — and let the stack heal itself (nobody
runs `squall up`). Each one must come back (counted in `squall status`), work must go on after each
restart, and afterwards every job is terminal, none is lost, none ran twice, the batch's callback
was posted once, and a replay of the log equals the live read models."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from drills import ContainerStarts, sigkill, worker_pids
from e2e_harness import StackClient, job, start_stack, stop_stack

from deploy import stack
from deploy.kafka import KafkaBroker
from deploy.processes import ProcessTable, pid_alive

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman, pytest.mark.slow]

# infrastructure last: the services' restarts are drilled while Kafka and PostgreSQL are up
COMPONENTS = ["front", "resolver", "readmodel", "callbacks", "scheduler", "autoscaler", "worker", "postgres", "kafka"]
CHAIN = 45  # links of a dependency chain: work flows during the whole drill
FAN = 4
# the production default: a restarted agent must not be mistaken for a lost instance while a loaded
# machine takes a while to bring it (or the broker) back
HEARTBEAT_TIMEOUT_S = 60.0


def drill_batch() -> list[dict]:
    jobs = [job(1, ["sh", "-c", "echo link 1; sleep 2"])]
    for i in range(2, CHAIN + 1):
        jobs.append(job(i, ["sh", "-c", f"echo link {i}; sleep 2"], parents=[i - 1]))
    for _ in range(FAN):
        root = len(jobs) + 1
        jobs.append(job(root, ["sh", "-c", "echo fan; sleep 4"]))
        for _leaf in range(2):
            jobs.append(job(len(jobs) + 1, ["sh", "-c", "echo leaf; sleep 1"], parents=[root]))
    return jobs


def component_pids(client: StackClient, name: str) -> dict[str, int]:
    """The live pids of a component (the worker agents: one per instance)."""
    if name == "worker":
        return {n: p for n, p in worker_pids(client.home).items() if pid_alive(p)}
    pid = component_pid(client, name)
    return {name: pid} if pid else {}


def component_pid(client: StackClient, name: str) -> int | None:
    if name == "kafka":
        pid = KafkaBroker(client.home / "kafka")._read_pid()
    elif name == "postgres":
        try:
            pid = int((client.home / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    else:
        pid = ProcessTable(client.home).pid(name)
    return pid if pid is not None and pid_alive(pid) else None


class CallbackReceiver:
    def __init__(self) -> None:
        posts = self.posts = []  # type: list[dict]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def drill_stack(podman_ready: None) -> Iterator[StackClient]:
    """Its own embedded (secured) broker and PostgreSQL: killing them disturbs no other test."""
    client = start_stack(None, None, workers=1, worker_cores=2, heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S)
    try:
        yield client
    finally:
        stop_stack(client)


def test_every_component_killed_in_turn_mid_batch_comes_back_and_every_job_ends_once(
        drill_stack: StackClient) -> None:
    client = drill_stack
    starts = ContainerStarts(client.home)
    receiver = CallbackReceiver()
    try:
        batch_id = client.submit(drill_batch(), callback=receiver.url)
        client.wait_for(lambda: any(j["state"] == "Running" for j in client.jobs(batch_id).values()),
                        timeout_s=180, what="a job running")
        for name in COMPONENTS:
            done_before = client.wait_for(lambda: client.batch(batch_id), what="the batch")
            assert not done_before["complete"], f"the batch ended before {name} was killed: make CHAIN longer"
            killed = component_pids(client, name)
            assert killed, f"{name} is not running"
            for pid in killed.values():
                sigkill(pid)

            def back(name: str = name, killed: dict[str, int] = killed) -> bool:
                now = component_pids(client, name)
                return all(now.get(n) not in (None, pid) for n, pid in killed.items())

            client.wait_for(back, timeout_s=180, what=f"{name} restarted by the stack itself")
            # and the stack works again: a job completes after the restart
            before = done_before["n_completed"]
            client.wait_for(lambda before=before: client.batch(batch_id)["n_completed"] > before,
                            timeout_s=180, what=f"progress after {name} came back")
        batch = client.wait(batch_id, timeout_s=400)
        # as long as every recovery above: one run in three missed a 60 s wait here with the batch done
        # (not traced; perhaps the callbacks service rejoining its group after the broker, killed last)
        client.wait_for(lambda: receiver.posts, timeout_s=180, what="the batch's callback")
    finally:
        starts.stop()
        receiver.close()

    jobs = client.jobs(batch_id)
    assert len(jobs) == CHAIN + 3 * FAN, "a job was lost"
    assert {j["state"] for j in jobs.values()} == {"Success"}, {i: j["state"] for i, j in jobs.items()}
    assert batch["state"] == "success"
    executions = starts.main_starts(client.home, batch_id)
    assert set(executions) == set(jobs), f"jobs whose container start was not seen: {set(jobs) - set(executions)}"
    twice = {job_id: labels for job_id, labels in executions.items() if len(labels) > 1}
    assert not twice, f"executed more than once (attempt labels): {twice}"
    assert len(receiver.posts) == 1 and receiver.posts[0]["id"] == batch_id

    status = stack.status(client.home)
    components = status["components"]  # type: ignore[index]
    restarts = {name: components[name]["restarts"] for name in COMPONENTS if name != "worker"}  # type: ignore[index]
    assert all(n >= 1 for n in restarts.values()), restarts
    assert status["workers"] and all(w["restarts"] >= 1 for w in status["workers"]), status["workers"]  # type: ignore[index]
    assert status["running"], status

    verify = subprocess.run([sys.executable, "-c", "from services.cli import main; main()", "replay", "--all", "--verify",
                             "--database-url", client.state.database_url, "--bootstrap", client.state.bootstrap,
                             "--topic-prefix", client.state.topic_prefix,
                             "--kafka-credentials", str(client.state.credentials_file("admin"))],
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the front was killed mid-batch too: its tables still hold every fact the log does
    assert "the front's tables hold every batch" in verify.stdout, verify.stdout


def test_squall_down_is_not_undone_by_the_supervisor(podman_ready: None, pg_url: str) -> None:
    client = start_stack(None, pg_url, workers=1, worker_cores=2)
    home = client.home
    pids = {name: ProcessTable(home).pid(name) for name in stack.SERVICE_MODULES}
    workers = worker_pids(home)
    stop_stack(client)  # squall down; keeps nothing
    time.sleep(3.0)  # a supervisor or an autoscaler still alive would have restarted something by now
    for name, pid in pids.items():
        assert pid is not None and not pid_alive(pid), f"{name} survived squall down"
    assert all(not pid_alive(pid) for pid in workers.values())
    leftover = subprocess.run(["pgrep", "-f", str(home)], capture_output=True, text=True).stdout.split()
    assert leftover == [], f"processes of the stack still running after down: {leftover}"
