"""The agent end to end with real podman: many concurrent jobs, and a SIGKILL mid-attempt (real Kafka)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from events.catalog import InstanceDeactivated, JobAttemptStarted
from events.objectstore.layout import log_key
from tests.unit.worker.factories import assignment
from tests.unit.worker.harness import AgentHarness, mjcs, read_all
from worker.attempt import WorkerLimits

pytestmark = pytest.mark.podman
MIB = 1 << 20


async def test_fifty_concurrent_short_jobs_complete_correctly(memory_log, topics, podman, tmp_path, instance_name,
                                                              worker_store):
    store, system, data = worker_store
    h = AgentHarness(log=memory_log, topics=topics, home=tmp_path, runtime=podman, instance_name=instance_name,
                     cores=13, scratch_mode="loop", store=store, system_bucket=system, data_bucket=data,
                     limits=WorkerLimits(scratch_per_core_bytes=16 * MIB, scratch_cap_bytes=16 * MIB))
    await h.start()
    jobs = [assignment(instance_name, ("sh", "-c", f"echo job $HAIL_JOB_ID; sleep 0.5; exit {j % 3}"),
                       batch_id=5, job_id=j, cores_mcpu=250, memory_bytes=64 * MIB) for j in range(1, 51)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await h.assign(*jobs)
    events = await h.wait_for(lambda evs: len(mjcs(evs)) >= 50, timeout_s=120)
    elapsed = loop.time() - t0
    await h.shutdown()
    done = {m.job_id: m for m in mjcs(events)}
    assert len(mjcs(events)) == 50 and set(done) == set(range(1, 51))
    for j, m in done.items():
        assert (m.exit_code, m.outcome) == (j % 3, "Success" if j % 3 == 0 else "Failed"), j
        assert await store.get(system, log_key(5, j, "a1", "main")) == f"job {j}\n".encode()
    assert await podman.list_by_label("squall.instance", instance_name) == []
    print(f"50 jobs in {elapsed:.1f} s")


def _start_agent(home: Path, instance: str, bootstrap: str, prefix: str, socket: Path, log_file: Path,
                 storage_endpoint: str, system_bucket: str):
    out = open(log_file, "ab")  # noqa: SIM115 -- handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "--instance-name", instance, "--cores", "2", "--memory-gib", "2",
         "--storage-gib", "1", "--bootstrap", bootstrap, "--topic-prefix", prefix, "--home", str(home),
         "--podman-socket", str(socket), "--heartbeat-interval", "1", "--drain-timeout", "5",
         "--storage-endpoint", storage_endpoint, "--system-bucket", system_bucket],
        stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.kafka
async def test_agent_sigkilled_mid_attempt_reports_it_once_after_restart(
        kafka_log, kafka_bootstrap, topics, podman_socket, tmp_path, instance_name, storage_endpoint, worker_store):
    store, system, data = worker_store
    # each execution appends a line to /io/runs; the output step copies it out: 2 lines = ran twice
    a = assignment(instance_name, ("sh", "-c", "echo run >> /io/runs; sleep 4; echo done"),
                   output_files=[("/io/runs", f"gs://{data}/runs")], memory_bytes=64 * MIB)
    agent_log = tmp_path / "agent.log"
    first = _start_agent(tmp_path, instance_name, kafka_bootstrap, topics.prefix, podman_socket, agent_log,
                         storage_endpoint, system)
    second = None
    try:
        h = AgentHarness(log=kafka_log, topics=topics, home=tmp_path, runtime=None, instance_name=instance_name)
        await h.assign(a)
        await h.wait_for(lambda evs: any(isinstance(e, JobAttemptStarted) for e in evs), timeout_s=60)
        await asyncio.sleep(1.0)  # the container is running now
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        second = _start_agent(tmp_path, instance_name, kafka_bootstrap, topics.prefix, podman_socket, agent_log,
                              storage_endpoint, system)
        events = await h.wait_for(lambda evs: len(mjcs(evs)) >= 1, timeout_s=60)
        await asyncio.sleep(2.0)
        events = await read_all(kafka_log, topics.batch)
        assert len(mjcs(events)) == 1, agent_log.read_text()[-3000:]
        m = mjcs(events)[0]
        assert (m.outcome, m.exit_code) == ("Success", 0), agent_log.read_text()[-3000:]
        assert await store.get(data, "runs") == b"run\n"  # executed exactly once
        # its log, shipped by the restarted agent that re-attached to the container
        assert (await store.get(system, log_key(a.batch_id, a.job_id, "a1", "main"))).endswith(b"done\n")
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
        instance_events = await read_all(kafka_log, topics.instance)
        assert isinstance(instance_events[-1], InstanceDeactivated)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
