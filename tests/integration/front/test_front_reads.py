"""Read endpoints: read-model rows are seeded directly (the projections are another component)."""

from __future__ import annotations

import json

import pytest
from front_specs import batch, dag

from events.objectstore.layout import log_key, resource_usage_key, status_key

pytestmark = pytest.mark.postgres


async def _batch_with_jobs(front, n: int, **attrs) -> int:
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(n, token=f"t{n}{attrs}", attributes=attrs), "bunch": dag(n),
                                      "job_groups": []})
    assert r.status_code == 200, r.text
    return r.json()["id"]


async def _seed_jobs(front, batch_id: int, states: list[str], **kw) -> None:
    for job_id, state in enumerate(states, start=1):
        await front.sql(
            "INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, name, \"user\", billing_project, state, "
            "committed, always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, memory_bytes, "
            "storage_gib, preemptible, worker_type, exit_code, current_attempt_id, time_created, duration_ms, status) "
            "VALUES (%s, %s, 0, 1, %s, 'alice', 'alice-project', %s, true, false, 20, %s, %s, %s, 1000, 1, 0, true, "
            "'standard', %s, %s, 1000, %s, %s)",
            (batch_id, job_id, f"job{job_id}", state, [job_id - 1] if job_id > 1 else [],
             json.dumps({"name": f"job{job_id}"}), json.dumps({"process": {"type": "docker"}}),
             kw.get("exit_code"), kw.get("attempt"), kw.get("duration_ms"), kw.get("status")))


async def _seed_batch(front, batch_id: int, *, n_jobs: int, n_completed: int, n_failed: int = 0) -> None:
    await front.sql(
        "INSERT INTO batches (batch_id, \"user\", billing_project, token, state, n_jobs, n_completed, n_succeeded, "
        "n_failed, time_created, time_completed) VALUES (%s, 'alice', 'alice-project', 't', %s, %s, %s, %s, %s, "
        "1000, %s)",
        (batch_id, "complete" if n_completed == n_jobs else "running", n_jobs, n_completed,
         n_completed - n_failed, n_failed, 5000 if n_completed == n_jobs else None))


async def test_get_batch_combines_front_truth_and_the_read_model(front):
    batch_id = await _batch_with_jobs(front, 3, name="x")
    before = (await front.client.get(f"/api/v1alpha/batches/{batch_id}")).json()
    assert before["state"] == "running" and before["complete"] is False and before["n_jobs"] == 3
    assert before["attributes"] == {"name": "x"} and before["user"] == "alice"
    await _seed_batch(front, batch_id, n_jobs=3, n_completed=3, n_failed=1)
    after = (await front.client.get(f"/api/v1alpha/batches/{batch_id}")).json()
    assert after["state"] == "failure" and after["complete"] is True and after["n_failed"] == 1
    assert after["time_completed"].endswith("Z")


async def test_list_batches_newest_first_with_query_and_paging(front):
    ids = [await _batch_with_jobs(front, 1, tag=str(i)) for i in range(3)]
    listed = (await front.client.get("/api/v1alpha/batches")).json()
    assert [b["id"] for b in listed["batches"]] == ids[::-1] and "last_batch_id" not in listed
    page = (await front.client.get("/api/v1alpha/batches", params={"limit": 2})).json()
    assert [b["id"] for b in page["batches"]] == ids[:0:-1] and page["last_batch_id"] == ids[1]
    rest = (await front.client.get("/api/v1alpha/batches", params={"limit": 2, "last_batch_id": ids[1]})).json()
    assert [b["id"] for b in rest["batches"]] == [ids[0]]
    tagged = (await front.client.get("/api/v1alpha/batches", params={"q": "tag=1"})).json()
    assert [b["id"] for b in tagged["batches"]] == [ids[1]]
    assert (await front.client.get("/api/v1alpha/batches", params={"q": "complete"})).json()["batches"] == []
    assert (await front.client.get("/api/v1alpha/batches", headers=front.bob)).json()["batches"] == []
    bad = await front.client.get("/api/v1alpha/batches", params={"q": "frob"})
    assert bad.status_code == 400 and "frob" in bad.json()["message"]


async def test_list_jobs_pages_by_50_and_filters(front):
    batch_id = await _batch_with_jobs(front, 60)
    await _seed_jobs(front, batch_id, ["Success"] * 55 + ["Running"] * 5)
    first = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs")).json()
    assert [j["job_id"] for j in first["jobs"]] == list(range(1, 51)) and first["last_job_id"] == 50
    second = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs", params={"last_job_id": 50})).json()
    assert [j["job_id"] for j in second["jobs"]] == list(range(51, 61)) and second["last_job_id"] is None
    live = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs", params={"q": "live"})).json()
    assert [j["job_id"] for j in live["jobs"]] == [56, 57, 58, 59, 60]
    named = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups/0/jobs",
                                    params={"q": "name=job7", "recursive": "true"})).json()
    assert [j["job_id"] for j in named["jobs"]] == [7]
    entry = first["jobs"][0]
    assert set(entry) >= {"batch_id", "job_id", "name", "user", "billing_project", "state", "exit_code",
                          "end_time", "duration", "cost", "msec_mcpu", "always_run"}


async def test_get_job_status_attempts_logs_and_usage(front):
    batch_id = await _batch_with_jobs(front, 1)
    await _seed_jobs(front, batch_id, ["Running"], attempt="a1")
    await front.sql("INSERT INTO attempts (batch_id, job_id, attempt_id, instance_name, start_time, end_time, reason) "
                    "VALUES (%s, 1, 'a1', 'w-1', 1000, 3500, NULL)", (batch_id,))
    store = front.store
    await store.put(front.system_bucket, log_key(batch_id, 1, "a1", "main"), b"hello\n")
    await store.put(front.system_bucket, status_key(batch_id, 1, "a1"), json.dumps({"state": "running"}).encode())
    await store.put(front.system_bucket, resource_usage_key(batch_id, 1, "a1", "main"),
                    json.dumps({"columns": ["time_msecs"], "index": [0], "data": [[1]]}).encode())

    job = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1")).json()
    assert job["state"] == "Running" and job["status"] == {"state": "running"}
    assert job["spec"]["n_max_attempts"] == 20 and job["attributes"] == {"name": "job1"}
    attempts = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/attempts")).json()
    assert attempts[0]["attempt_id"] == "a1" and attempts[0]["duration_ms"] == 2500
    assert attempts[0]["start_time"] == "1970-01-01T00:00:01.000Z"
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log")).json() == {"main": "hello\n"}
    raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main")
    assert raw.content == b"hello\n"
    # a log rewritten in the store is read as it is now
    await store.put(front.system_bucket, log_key(batch_id, 1, "a1", "main"), b"hello\nmore\n")
    raw = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main", params={"attempt_id": "a1"})
    assert raw.content == b"hello\nmore\n"
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/input")).status_code == 404
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/shell")).status_code == 400
    unknown = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/log/main", params={"attempt_id": "zz"})
    assert unknown.status_code == 404
    usage = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/1/resource_usage")).json()
    assert usage == {"main": {"columns": ["time_msecs"], "index": [0], "data": [[1]]}}
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/2")).status_code == 404


async def test_pending_job_has_no_attempts_and_why_names_parents(front):
    batch_id = await _batch_with_jobs(front, 2)
    await _seed_jobs(front, batch_id, ["Running", "Pending"], attempt=None)
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/2/attempts")).json() is None
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs/2/log")).json() == {}
    why = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/2/why")).json()
    assert why["reason_code"] == "waiting_for_parents" and "1" in why["message"]
    await front.sql("INSERT INTO scheduling_explanations VALUES (%s, 1, 'no_capacity', 'no room', 1)", (batch_id,))
    await front.sql("UPDATE jobs SET state = 'Ready' WHERE batch_id = %s AND job_id = 1", (batch_id,))
    why = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/why")).json()
    assert (why["reason_code"], why["source"]) == ("no_capacity", "scheduler")


async def test_why_of_a_ready_job_tells_what_the_autoscaler_decided_for_its_pool(front):
    batch_id = await _batch_with_jobs(front, 1)
    await _seed_jobs(front, batch_id, ["Ready"])
    why = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/why")).json()
    assert why["autoscaler"] is None  # it has decided nothing about pool standard yet
    decision = {"pool": "standard", "requested": 0, "standing_requested": 0, "deleted": 0,
                "limited_by": "max_live_instances", "paused_until": None, "ready_mcpu": 9000, "demand_mcpu": 9000,
                "demand_truncated": False, "future_mcpu": 160000, "window_ms": 150000, "free_mcpu": 0,
                "pending_mcpu": 0, "live": 2, "pending": 0, "inactive": 0, "min_instances": 0,
                "max_live_instances": 2, "max_instances": 4, "max_new_per_loop": 10, "worker_cores": 4,
                "standing_worker_cores": 4, "users": [], "zones": [], "instances": []}
    await front.sql("INSERT INTO pool_decisions VALUES ('i', 0, 1, 'standard', 'e1', 2000, 'autoscaler/x', %s)",
                    (json.dumps(decision),))
    why = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/why")).json()
    auto = why["autoscaler"]
    assert (auto["pool"], auto["limited_by"], auto["max_live_instances"]) == ("standard", "max_live_instances", 2)
    assert auto["waiting"].startswith("the autoscaler cannot add instances: the pool is at max_live_instances")


async def test_audit_lists_a_jobs_events_in_log_order(front):
    batch_id = await _batch_with_jobs(front, 1)
    await _seed_jobs(front, batch_id, ["Success"])
    for offset, kind in [(7, "JobCompleted"), (3, "JobCreated")]:
        await front.sql("INSERT INTO audit VALUES (%s, 1, 'b', 0, %s, %s, %s, 1, NULL, 'front', NULL)",
                        (batch_id, offset, kind, f"id{offset}"))
    audit = (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/audit")).json()
    assert [(e["offset"], e["event_type"]) for e in audit["events"]] == [(3, "JobCreated"), (7, "JobCompleted")]
    assert (await front.client.get(f"/api/v1alpha/squall/batches/{batch_id}/jobs/1/audit",
                                    headers=front.bob)).status_code == 404


async def test_job_groups(front):
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(0, n_job_groups=2), "bunch": [],
        "job_groups": [{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1}]})
    batch_id = r.json()["id"]
    root = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups/0")).json()
    assert root["job_group_id"] == 0 and root["complete"] is True and root["state"] == "success"
    children = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups")).json()
    assert [g["job_group_id"] for g in children["job_groups"]] == [1]
    grandchildren = (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups/1/job-groups")).json()
    assert [g["job_group_id"] for g in grandchildren["job_groups"]] == [2]
    await front.client.patch(f"/api/v1alpha/batches/{batch_id}/job-groups/1/cancel")
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups/2")).json()["state"] == "cancelled"
    assert (await front.client.get(f"/api/v1alpha/batches/{batch_id}/job-groups/9")).status_code == 404


async def test_meta_endpoints(front):
    assert (await front.client.get("/api/v1alpha/supported_regions")).json() == ["local", "us-central1"]
    assert (await front.client.get("/api/v1alpha/default_region")).text == "local"
    assert (await front.client.get("/api/v1alpha/cloud")).text == "local"
    assert (await front.client.get("/healthcheck")).status_code == 200
    assert (await front.client.get("/api/v1alpha/version")).status_code == 200
    bp = (await front.client.get("/api/v1alpha/billing_projects/alice-project")).json()
    assert bp["billing_project"] == "alice-project" and bp["users"] == ["alice"]
    assert (await front.client.get("/api/v1alpha/billing_projects/bob")).status_code == 404
    spec = (await front.client.get("/openapi.json")).json()
    assert "/api/v1alpha/batches/create-fast" in spec["paths"]
