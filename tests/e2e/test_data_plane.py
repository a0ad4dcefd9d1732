"""The data plane on the embedded stack: job files through gs:// (the stack's own fake-gcs-server),
logs/usage/timings in squall's bucket that outlive the worker, live logs from the worker's endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

import pytest
from e2e_harness import StackClient, job

from deploy.processes import pid_alive
from events.objectstore.gcs import GcsObjectStore

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman]


def _store_call(client: StackClient, fn):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        store = GcsObjectStore(endpoint=client.state.storage_endpoint)
        try:
            return await fn(store)
        finally:
            await store.close()
    return asyncio.run(go())


def _files(inputs: list[tuple[str, str]] = (), outputs: list[tuple[str, str]] = ()) -> dict:
    return {"input_files": [{"from": s, "to": d} for s, d in inputs],
            "output_files": [{"from": s, "to": d} for s, d in outputs]}


def test_a_dag_passes_files_through_gs_and_its_records_outlive_the_worker(e2e_stack: StackClient) -> None:
    s = e2e_stack.state
    bucket, run = s.bucket, f"run-{uuid.uuid4().hex[:8]}"
    url = f"gs://{bucket}/{run}"
    _store_call(e2e_stack, lambda st: st.put(bucket, f"{run}/seed.txt", b"seed from the user\n"))
    produce = job(1, ["sh", "-c", "echo alpha > /io/a.txt; mkdir -p /io/parts; "
                                  "for i in 1 2 3; do echo part$i > /io/parts/p$i; done; echo produced"],
                  **_files(outputs=[("/io/a.txt", f"{url}/a.txt"), ("/io/parts", f"{url}/parts")]))
    transform = job(2, ["sh", "-c", "tr a-z A-Z < /io/a.txt > /io/b.txt; cat /io/seed.txt >> /io/b.txt; "
                                    "echo transformed"], parents=[1],
                    **_files(inputs=[(f"{url}/a.txt", "/io/a.txt"), (f"{url}/seed.txt", "/io/seed.txt")],
                             outputs=[("/io/b.txt", f"{url}/b.txt")]))
    join = job(3, ["sh", "-c", "cat /io/b.txt /io/parts/p1 /io/parts/p2 /io/parts/p3 > /io/joined.txt; echo joined"],
               parents=[1, 2], **_files(inputs=[(f"{url}/b.txt", "/io/b.txt"), (f"{url}/parts", "/io/parts")],
                                        outputs=[("/io/joined.txt", f"{url}/out/joined.txt")]))
    batch_id = e2e_stack.submit([produce, transform, join])
    b = e2e_stack.wait(batch_id)
    assert b["state"] == "success", e2e_stack.jobs(batch_id)

    objects = _store_call(e2e_stack, lambda st: st.list(bucket, f"{run}/"))
    assert [o.key for o in objects] == [f"{run}/{k}" for k in (
        "a.txt", "b.txt", "out/joined.txt", "parts/p1", "parts/p2", "parts/p3", "seed.txt")]
    contents = {o.key.removeprefix(f"{run}/"): _store_call(e2e_stack, lambda st, k=o.key: st.get(bucket, k))
                for o in objects}
    assert contents["a.txt"] == b"alpha\n"
    assert contents["b.txt"] == b"ALPHA\nseed from the user\n"
    assert contents["parts/p2"] == b"part2\n"
    assert contents["out/joined.txt"] == b"ALPHA\nseed from the user\npart1\npart2\npart3\n"

    def records() -> dict[int, dict]:
        out = {}
        for j, word in ((1, "produced"), (2, "transformed"), (3, "joined")):
            main = e2e_stack.http.get(f"/batches/{batch_id}/jobs/{j}/log/main")
            assert main.status_code == 200 and main.text == f"{word}\n", main.text
            logs = e2e_stack.http.get(f"/batches/{batch_id}/jobs/{j}/log").raise_for_status().json()
            usage = e2e_stack.http.get(f"/batches/{batch_id}/jobs/{j}/resource_usage").raise_for_status().json()
            status = e2e_stack.http.get(f"/batches/{batch_id}/jobs/{j}").raise_for_status().json()["status"]
            attempts = e2e_stack.http.get(f"/batches/{batch_id}/jobs/{j}/attempts").raise_for_status().json()
            timing = {step: c["timing"] for step, c in status["container_statuses"].items() if c["timing"]}
            out[j] = {"logs": logs, "usage": usage, "timing": timing, "attempts": attempts}
        return out

    before = records()
    assert set(before[1]["logs"]) == {"main", "output"} and set(before[2]["logs"]) == {"input", "main", "output"}
    assert f"copied {url}/parts -> /io/parts (3 objects, 18 bytes)" in before[3]["logs"]["input"]
    assert set(before[2]["timing"]) == {"input", "main", "output"}
    assert all(t["running"]["duration"] is not None for t in before[2]["timing"].values())
    assert before[1]["usage"]["main"]["columns"][0] == "time_msecs"
    # the worker's own status document, with every step's timing, is in squall's bucket too
    from events.objectstore.layout import status_key
    attempt = before[2]["attempts"][0]["attempt_id"]
    doc = json.loads(_store_call(e2e_stack, lambda st: st.get(s.system_bucket, status_key(batch_id, 2, attempt))))
    assert doc["state"] == "succeeded" and set(doc["timing"]) == {"input", "main", "output"}

    # stop the worker that ran them and delete its scratch and spool: everything is still served
    instances = {a["instance_name"] for r in before.values() for a in r["attempts"] if a.get("instance_name")} or \
        {p.stem for p in (e2e_stack.home / "instances").glob("*.pid")}
    for name in instances:
        pid_file = e2e_stack.home / "instances" / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 90
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not pid_alive(pid)
        for sub in ("scratch", "spool"):
            shutil.rmtree(e2e_stack.home / "instances" / name / sub, ignore_errors=True)
    assert records() == before


def test_a_missing_input_fails_the_job_as_the_users_error(e2e_stack: StackClient) -> None:
    missing = f"gs://{e2e_stack.state.bucket}/nowhere-{uuid.uuid4().hex[:6]}/x.txt"
    batch_id = e2e_stack.submit([job(1, ["true"], **_files(inputs=[(missing, "/io/x.txt")]))])
    b = e2e_stack.wait(batch_id)
    assert b["state"] == "failure"
    j = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1").raise_for_status().json()
    assert j["state"] == "Failed"
    assert j["status"]["error"] == f"input {missing} not found"
    attempts = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/attempts").raise_for_status().json()
    assert len(attempts) == 1  # a user error: not retried


def test_a_job_with_regions_reads_a_bucket_the_front_located_in_the_store(e2e_stack: StackClient) -> None:
    """Data locality (#18 item 4) on the stack: the front reads the bucket's location from the
    stack's fake-gcs-server (US-CENTRAL1), which serves the stack's region `local`, so the job runs."""
    bucket, key = e2e_stack.state.bucket, f"loc-{uuid.uuid4().hex[:8]}/in.txt"
    _store_call(e2e_stack, lambda st: st.put(bucket, key, b"near\n"))
    batch_id = e2e_stack.submit([job(1, ["cat", "/io/in.txt"], regions=["local"],
                                     **_files(inputs=[(f"gs://{bucket}/{key}", "/io/in.txt")]))])
    assert e2e_stack.wait(batch_id)["state"] == "success", e2e_stack.jobs(batch_id)
    assert e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main").text == "near\n"


def test_a_running_jobs_log_line_is_served_within_a_second(e2e_stack: StackClient) -> None:
    command = ["python3", "-c", "import time; print(repr(time.time()), flush=True); time.sleep(60)"]
    batch_id = e2e_stack.submit([job(1, command, image="localhost/debian-python3:bookworm")])
    try:
        line = None
        deadline = time.monotonic() + 180
        while line is None and time.monotonic() < deadline:
            r = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main")
            if r.status_code == 200 and r.text.strip():
                line = r.text.strip().splitlines()[0]
                seen_at = time.time()
            else:
                time.sleep(0.05)
        assert line is not None, "the log never showed the line"
        delay = seen_at - float(line)
        print(f"live log line served {delay:.3f} s after the job printed it")
        assert delay < 1.0, f"the line showed up {delay:.2f} s after the job printed it"
        logs = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/log").raise_for_status().json()
        assert logs["main"].strip() == line
    finally:
        e2e_stack.http.patch(f"/batches/{batch_id}/cancel")
    e2e_stack.wait(batch_id, timeout_s=120)


def test_status_answers_the_bucket_and_the_storage_endpoint(e2e_stack: StackClient) -> None:
    from deploy import stack
    from deploy.fleet_lan import GATEWAY

    info = stack.status(Path(e2e_stack.state.home))
    assert info["bucket"] == f"gs://{e2e_stack.state.bucket}"
    # isolated workers reach the embedded store on the fleet LAN's gateway; shared ones on loopback
    host = GATEWAY if e2e_stack.state.isolated_workers else "127.0.0.1"
    assert str(info["storage_endpoint"]).startswith(f"http://{host}:")
    assert info["components"]["storage"]["healthy"] is True  # type: ignore[index]
    assert json.dumps(info)  # what `squall status --json` prints
