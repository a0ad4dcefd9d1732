"""DAG semantics, cancellation, always_run and logs through the HTTP API on a real local stack."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from e2e_harness import StackClient, job
from prometheus_client.parser import text_string_to_metric_families

from deploy import stack
from services.demo import EXPECTED_STATES, run_demo

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.podman]


def test_demo_dag_ends_as_its_semantics_say(e2e_stack: StackClient) -> None:
    s = e2e_stack.state
    result = run_demo(s.api_url, s.token, s.billing_project, timeout_s=300)
    assert result.unexpected() == {}
    assert {j["name"] for j in result.jobs} == set(EXPECTED_STATES)
    b = result.batch
    assert (b["state"], b["complete"], b["n_jobs"]) == ("failure", True, 8)
    assert (b["n_succeeded"], b["n_failed"], b["n_cancelled"]) == (6, 1, 1)
    by_name = {j["name"]: j for j in result.jobs}
    assert by_name["flaky-step"]["exit_code"] == 3


def test_logs_of_a_finished_job(e2e_stack: StackClient) -> None:
    batch_id = e2e_stack.submit([job(1, ["sh", "-c", "echo hello from squall; echo oops >&2"])])
    assert e2e_stack.wait(batch_id)["state"] == "success"
    main = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/log/main").raise_for_status().text
    assert "hello from squall" in main
    logs = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/log").raise_for_status().json()
    assert "hello from squall" in logs["main"]
    attempts = e2e_stack.http.get(f"/batches/{batch_id}/jobs/1/attempts").raise_for_status().json()
    assert len(attempts) == 1 and attempts[0]["end_time"] is not None


def test_cancel_mid_run_stops_running_jobs_and_cancels_the_rest(e2e_stack: StackClient) -> None:
    jobs = [job(i, ["sh", "-c", "sleep 60"]) for i in (1, 2)]
    jobs.append(job(3, ["sh", "-c", "echo never"], parents=[1]))
    jobs.append(job(4, ["sh", "-c", "echo always"], parents=[1], always_run=True))
    batch_id = e2e_stack.submit(jobs)
    e2e_stack.wait_for(lambda: all(j["state"] == "Running" for j in e2e_stack.jobs(batch_id).values()
                                   if j["job_id"] in (1, 2)), what="jobs 1 and 2 running")
    started = time.monotonic()
    e2e_stack.http.patch(f"/batches/{batch_id}/cancel").raise_for_status()
    b = e2e_stack.wait(batch_id, timeout_s=90)
    assert time.monotonic() - started < 60, "running jobs were not killed within seconds"
    states = {i: j["state"] for i, j in e2e_stack.jobs(batch_id).items()}
    assert states[1] == states[2] == states[3] == "Cancelled"
    assert states[4] == "Success"  # always_run survives a batch cancel
    assert b["state"] == "cancelled"


def test_a_cancelled_batch_refuses_updates(e2e_stack: StackClient) -> None:
    batch_id = e2e_stack.submit([job(1, ["sh", "-c", "sleep 30"])])
    e2e_stack.http.patch(f"/batches/{batch_id}/cancel").raise_for_status()
    resp = e2e_stack.http.post(f"/batches/{batch_id}/update-fast", json={
        "update": {"token": "u2", "n_jobs": 1, "n_job_groups": 0}, "bunch": [job(1, ["true"])], "job_groups": []})
    assert resp.status_code == 400
    e2e_stack.wait(batch_id)


def test_a_batch_its_failures_cancelled_refuses_updates(e2e_stack: StackClient) -> None:
    """cancel_after_n_failures cancels the batch in the log (no user asked): the front refuses an
    update to it as to a batch a user cancelled, as Hail does (services/front/store.py)."""
    batch_id = e2e_stack.submit([job(1, ["false"]), job(2, ["sleep", "60"])], cancel_after_n_failures=1)
    done = e2e_stack.wait(batch_id)
    # job 2 was cancelled by the batch's cancellation, which the log holds before it
    assert (done["n_failed"], done["n_cancelled"]) == (1, 1), done
    resp = e2e_stack.http.post(f"/batches/{batch_id}/update-fast", json={
        "update": {"token": "u2", "n_jobs": 1, "n_job_groups": 0}, "bunch": [job(1, ["true"])], "job_groups": []})
    assert resp.status_code == 400 and "is cancelled" in resp.json()["message"], resp.text


def test_a_batch_callback_is_posted_its_status_when_it_completes(e2e_stack: StackClient) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        batch_id = e2e_stack.submit([job(1, ["true"])], callback=f"http://127.0.0.1:{server.server_address[1]}/done")
        assert e2e_stack.wait(batch_id)["state"] == "success"
        e2e_stack.wait_for(lambda: posts, timeout_s=60, what="the callback")
    finally:
        server.shutdown()
    assert len(posts) == 1
    assert (posts[0]["id"], posts[0]["complete"], posts[0]["state"], posts[0]["n_succeeded"]) == (batch_id, True, "success", 1)


def _documented_metrics() -> dict[str, str]:
    """name -> type, from the table in docs/METRICS.md."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "METRICS.md").read_text()
    rows = re.findall(r"^\| `(squall_[a-z_]+)` \| (counter|gauge|histogram) \|", doc, flags=re.MULTILINE)
    return dict(rows)


def _scrape_all(e2e_stack: StackClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of every squall process (front, services, worker agents): name -> [(labels, value)]."""
    status = stack.status(e2e_stack.home)
    urls = [f"{e2e_stack.state.api_url}/metrics"]
    urls += [c["metrics"] for name, c in status["components"].items() if name != "front" and c.get("metrics")]
    urls += [w["metrics"] for w in status["workers"] if w.get("metrics")]
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for url in urls:
        try:
            text = httpx.get(url, headers={"Authorization": f"Bearer {e2e_stack.state.token}"}, timeout=5).text
        except httpx.HTTPError:
            continue  # a worker that just went away
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def _without_value(documented: dict[str, str], samples: dict[str, list[tuple[dict[str, str], float]]]) -> list[str]:
    """The documented metrics no process gave a value: a counter that never counted, a histogram that
    observed nothing, a gauge never set (an unlabelled family with no sample set is not exposed)."""
    missing = []
    for name, kind in documented.items():
        if kind == "counter":
            ok = any(v > 0 for _, v in samples.get(name, ()))
        elif kind == "histogram":
            ok = any(v > 0 for _, v in samples.get(f"{name}_count", ()))
        else:
            ok = bool(samples.get(name))
        if not ok:
            missing.append(name)
    return missing


def test_every_documented_metric_takes_a_value(e2e_stack: StackClient) -> None:
    """Every metric docs/METRICS.md lists is set by some process during a run: one batch with a
    callback and a job that runs, and a request to the API. (Before: the utilisation and lag gauges
    were documented but nothing set them, and the test only looked for their names.)"""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    documented = _documented_metrics()
    assert len(documented) >= 10, documented

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        batch_id = e2e_stack.submit([job(1, ["sh", "-c", "sleep 1"])],
                                    callback=f"http://127.0.0.1:{server.server_address[1]}/done")
        assert e2e_stack.wait(batch_id)["state"] == "success"
        deadline = time.monotonic() + 60  # the lag gauges are sampled every 5 s, utilisation every loop
        while missing := _without_value(documented, _scrape_all(e2e_stack)):
            assert time.monotonic() < deadline, f"documented metrics no process gave a value: {missing}"
            time.sleep(1)
    finally:
        server.shutdown()
