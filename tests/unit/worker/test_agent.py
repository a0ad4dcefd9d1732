"""The agent's protocol with the log, over the fake runtime and the in-memory log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from events import failures
from events.catalog import (
    InstanceActivated,
    InstanceDeactivated,
    InstanceHeartbeat,
    JobAttemptCompleted,
    JobAttemptStarted,
    RunningAttemptsReported,
)
from events.envelope import derived_event_id
from events.log import partition_for
from events.objectstore.layout import status_key
from tests.unit.worker.factories import assignment, kill
from tests.unit.worker.harness import SYSTEM_BUCKET, AgentHarness, mjcs, read_all
from worker.fake_runtime import FakeProcess, FakeRuntime


@pytest.fixture
def harness(memory_log, topics, tmp_path: Path) -> AgentHarness:
    return AgentHarness(log=memory_log, topics=topics, home=tmp_path, runtime=FakeRuntime(), instance_name="w-unit")


async def test_runs_an_assignment_and_reports_mjs_then_mjc(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("sh", "-c", "echo hi; exit 3"), batch_id=7, job_id=2)
    await harness.assign(a)
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    kinds = [type(e) for e in events if isinstance(e, JobAttemptStarted | JobAttemptCompleted)]
    assert kinds == [JobAttemptStarted, JobAttemptCompleted]
    mjc = mjcs(events)[0]
    assert (mjc.outcome, mjc.exit_code, mjc.failure_cause) == ("Failed", 3, failures.NONZERO_EXIT)
    assert mjc.event_id == derived_event_id("JobAttemptCompleted", 7, 2, "a1")
    assert mjc.causation_id == a.event_id and mjc.instance_name == "w-unit"
    assert [s.name for s in mjc.steps] == ["input", "main", "output"]
    status = json.loads(await harness.store.get(SYSTEM_BUCKET, status_key(7, 2, "a1")))
    assert status["state"] == "failed" and status["container_statuses"]["main"]["container_status"]["exit_code"] == 3
    await harness.shutdown()
    instance_events = await read_all(harness.log, harness.topics.instance)
    assert isinstance(instance_events[0], InstanceActivated) and instance_events[0].cores_mcpu == 2000
    assert isinstance(instance_events[-1], InstanceDeactivated)


async def test_reads_only_its_partition_and_its_own_entries(harness: AgentHarness) -> None:
    n = await harness.log.partitions(harness.topics.assignment)
    mine = partition_for(b"w-unit", n)
    neighbour = next(f"other-{i}" for i in range(1000) if partition_for(f"other-{i}".encode(), n) == mine)
    await harness.start()
    await harness.assign(assignment(neighbour, ("true",), job_id=1), assignment("w-unit", ("true",), job_id=2))
    await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    await asyncio.sleep(0.3)
    assert [m.job_id for m in await harness.completions()] == [2]
    await harness.shutdown()


async def test_duplicate_assignment_runs_once(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("true",))
    await harness.assign(a, a)
    await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    await asyncio.sleep(0.3)
    await harness.shutdown()
    assert len(await harness.completions()) == 1
    assert len(harness.runtime.created_specs) == 1


async def test_kill_request_cancels_a_running_attempt(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("sleep", "30"))
    await harness.assign(a)
    await harness.wait_for(lambda evs: any(isinstance(e, JobAttemptStarted) for e in evs))
    await harness.assign(kill(a))
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 1, timeout_s=5)
    assert (mjcs(events)[0].outcome, mjcs(events)[0].failure_cause) == ("Cancelled", failures.KILLED)
    await harness.shutdown()


async def test_attempts_wait_for_cores_and_a_kill_releases_a_waiting_one(harness: AgentHarness) -> None:
    harness.cores = 1
    await harness.start()
    big = assignment("w-unit", ("sleep", "0.5"), cores_mcpu=1000)
    waiting = assignment("w-unit", ("true",), cores_mcpu=500)
    await harness.assign(big, waiting)
    await asyncio.sleep(0.2)
    assert harness.agent.running == {f"1-{big.job_id}-a1"}  # the second waits for cores
    await harness.assign(kill(waiting))
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 2)
    by_job = {m.job_id: m for m in mjcs(events)}
    assert by_job[waiting.job_id].outcome == "Cancelled" and by_job[big.job_id].outcome == "Success"
    assert not any(isinstance(e, JobAttemptStarted) and e.job_id == waiting.job_id for e in events)
    await harness.shutdown()


async def test_heartbeats_list_running_attempts(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("sleep", "1"), attempt_id="hb1")
    await harness.assign(a)
    events = await harness.wait_for(
        lambda evs: any(isinstance(e, InstanceHeartbeat) and "hb1" in e.running_attempt_ids for e in evs),
        topic=harness.topics.heartbeat)
    assert any(isinstance(e, InstanceHeartbeat) for e in events)
    await harness.shutdown()


async def test_billing_reports_name_started_attempts_per_batch_until_they_end(harness: AgentHarness) -> None:
    """Hail's billing update: while attempts run, the worker reports them (per batch, on the batch topic,
    after their MJS and before their MJC); an attempt still waiting for cores is not reported."""
    harness.cores, harness.billing_interval_s = 1, 0.2
    await harness.start()
    one = assignment("w-unit", ("sleep", "1.5"), batch_id=7, job_id=1, attempt_id="r1", cores_mcpu=500)
    two = assignment("w-unit", ("sleep", "1.5"), batch_id=8, job_id=3, attempt_id="r2", cores_mcpu=500)
    waiting = assignment("w-unit", ("true",), batch_id=7, job_id=2, attempt_id="r3", cores_mcpu=1000)
    await harness.assign(one, two, waiting)
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 3, timeout_s=20)
    reports = [e for e in events if isinstance(e, RunningAttemptsReported)]
    assert {r.batch_id for r in reports} == {7, 8}
    named = {(r.batch_id, a.job_id, a.attempt_id) for r in reports for a in r.attempts}
    assert named >= {(7, 1, "r1"), (8, 3, "r2")}  # r3 waited for cores meanwhile: named only once it started
    r3_started = next(e for e in events if isinstance(e, JobAttemptStarted) and e.attempt_id == "r3").started_at
    assert all(r.running_at >= r3_started for r in reports if any(a.attempt_id == "r3" for a in r.attempts))
    assert any(r.running_at < r3_started for r in reports)  # and there were reports while it waited
    for r in reports:
        assert r.instance_name == "w-unit" and r.running_at == r.occurred_at
        assert r.event_id == derived_event_id("RunningAttemptsReported", "w-unit", r.batch_id, r.running_at)
        for a in r.attempts:  # in the batch's partition, between the attempt's MJS and MJC
            mjs = next(e for e in events if isinstance(e, JobAttemptStarted) and e.attempt_id == a.attempt_id)
            mjc = next(e for e in mjcs(events) if e.attempt_id == a.attempt_id)
            assert events.index(mjs) < events.index(r) < events.index(mjc)
            assert mjs.started_at <= r.running_at <= mjc.ended_at
    per_batch = [[r.running_at for r in reports if r.batch_id == b] for b in (7, 8)]
    assert all(times and times == sorted(times) for times in per_batch)
    await harness.shutdown()


async def test_restart_reattaches_to_a_live_container_and_reports_once(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("sh", "-c", "sleep 0.8; echo done; exit 4"))
    await harness.assign(a)
    await harness.wait_for(lambda evs: any(isinstance(e, JobAttemptStarted) for e in evs))
    await harness.crash()  # the fake container keeps running, as a real one would
    await harness.start()
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    assert (mjcs(events)[0].outcome, mjcs(events)[0].exit_code) == ("Failed", 4)
    assert len(harness.runtime.created_specs) == 1  # never run twice
    await harness.shutdown()


async def test_restart_without_the_container_reports_worker_crashed(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("sleep", "30"))
    await harness.assign(a)
    await harness.wait_for(lambda evs: any(isinstance(e, JobAttemptStarted) for e in evs))
    await harness.crash()
    for cid in list(harness.runtime.containers):  # the machine rebooted: containers are gone
        await harness.runtime.remove(cid)
    await harness.start()
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    m = mjcs(events)[0]
    assert (m.outcome, m.failure_cause) == ("Error", failures.WORKER_CRASHED)
    assert failures.is_system_failure(m.failure_cause)
    await harness.shutdown()


async def test_restart_resends_a_decided_but_unreported_mjc_identically(harness: AgentHarness) -> None:
    await harness.start()
    a = assignment("w-unit", ("true",))
    await harness.assign(a)
    first = (await harness.wait_for(lambda evs: len(mjcs(evs)) == 1))
    await harness.shutdown()
    # forget that it was reported, as if the agent died between appending and journaling it
    journal = harness.home / "instances" / "w-unit" / "journal.jsonl"
    lines = [line for line in journal.read_text().splitlines() if '"reported"' not in line]
    journal.write_text("\n".join(lines) + "\n")
    await harness.start()
    events = await harness.wait_for(lambda evs: len(mjcs(evs)) == 2)
    assert mjcs(events)[1] == mjcs(first)[0]  # the same event, byte for byte
    await harness.shutdown()
    assert len(harness.runtime.created_specs) == 1


async def test_drain_reports_unfinished_attempts_as_instance_lost(harness: AgentHarness) -> None:
    harness.drain_timeout_s = 0.3
    await harness.start()
    a = assignment("w-unit", ("sleep", "30"))
    await harness.assign(a)
    await harness.wait_for(lambda evs: any(isinstance(e, JobAttemptStarted) for e in evs))
    await harness.shutdown()
    m = (await harness.completions())[0]
    assert (m.outcome, m.failure_cause) == ("Error", failures.INSTANCE_LOST)


async def test_oom_and_image_failures_are_classified(memory_log, topics, tmp_path) -> None:
    def program(spec):
        return FakeProcess(exit_code=137, out_of_memory=True) if "oom" in spec.command else FakeProcess()
    runtime = FakeRuntime(program=program, unpullable={"registry.example/flaky:1": "transient",
                                                       "UPPER/Case:tag": "invalid_reference"})
    h = AgentHarness(log=memory_log, topics=topics, home=tmp_path, runtime=runtime, instance_name="w-unit")
    await h.start()
    await h.assign(assignment("w-unit", ("oom",), job_id=1),
                   assignment("w-unit", ("true",), job_id=2, image="localhost/missing:1"),
                   assignment("w-unit", ("true",), job_id=3, image="registry.example/flaky:1"),
                   assignment("w-unit", ("true",), job_id=4, process_type="bogus"),
                   assignment("w-unit", ("/bin/bash", "-c", "true"), job_id=5),
                   assignment("w-unit", ("true",), job_id=6, image="UPPER/Case:tag"))
    events = await h.wait_for(lambda evs: len(mjcs(evs)) == 6)
    got = {m.job_id: (m.outcome, m.failure_cause, m.out_of_memory) for m in mjcs(events)}
    assert got == {1: ("Failed", failures.OUT_OF_MEMORY, True), 2: ("Error", failures.IMAGE_NOT_FOUND, False),
                   3: ("Error", failures.IMAGE_PULL_FAILED, False), 4: ("Error", failures.INVALID_JOB, False),
                   5: ("Error", failures.CONTAINER_SPEC_INVALID, False),
                   6: ("Error", failures.INVALID_IMAGE_REFERENCE, False)}
    errors = {m.job_id: m.error for m in mjcs(events)}
    assert "executable file `/bin/bash` not found" in (errors[5] or "")  # the runtime's own message
    assert not any(failures.is_system_failure(failures_) for failures_ in (failures.CONTAINER_SPEC_INVALID,
                                                                           failures.INVALID_IMAGE_REFERENCE))
    await h.shutdown()
