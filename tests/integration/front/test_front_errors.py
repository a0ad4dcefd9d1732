"""Error paths through HTTP: 401, 400 naming the field, 413, and never a 5xx for bad input."""

from __future__ import annotations

import pytest
from front_specs import batch, dag, job

pytestmark = pytest.mark.postgres


async def test_missing_malformed_and_unknown_tokens_get_401(front):
    for headers in ({"Authorization": ""}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}):
        r = await front.client.get("/api/v1alpha/batches", headers=headers)
        assert r.status_code == 401, headers
        assert "token" in r.json()["message"] or "Authorization" in r.json()["message"]


async def test_bad_bodies_get_400_naming_the_field(front):
    cases = [
        (b"not json", "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b'{"batch": {"billing_project": "alice-project", "token": "t", "n_jobs": NaN}}', "body"),
        (b'{"batch": 1}', "batch"),
        (b'{"batch": {"billing_project": "alice-project", "token": "t", "n_jobs": 1}, "bunch": 5}', "bunch"),
        (b'{"batch": {"billing_project": "alice-project", "token": "t", "n_jobs": 1}, "extra": 5}', "extra"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ]
    for body, field in cases:
        r = await front.client.post("/api/v1alpha/batches/create-fast", content=body,
                                    headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (body[:60], r.text)
        assert r.json()["message"].startswith(field), (body[:60], r.json())


async def test_bad_job_in_a_bunch_names_its_index(front):
    bunch = dag(3)
    bunch[2]["resources"] = {"cpu": "3"}
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(3), "bunch": bunch, "job_groups": []})
    assert r.status_code == 400 and r.json()["message"].startswith("bunch[2].resources.cpu:")
    # nothing was reserved: the same token now creates the batch
    bunch[2]["resources"] = {"cpu": "2"}
    ok = await front.client.post("/api/v1alpha/batches/create-fast",
                                 json={"batch": batch(3), "bunch": bunch, "job_groups": []})
    assert ok.status_code == 200


async def test_ids_outside_the_update_are_refused(front):
    b = (await front.client.post("/api/v1alpha/batches/create", json=batch(2))).json()
    url = f"/api/v1alpha/batches/{b['id']}/updates/1/jobs/create"
    r = await front.client.post(url, json=[job(3)])
    assert r.status_code == 400 and "n_jobs=2" in r.json()["message"]
    r = await front.client.post(url, json=[job(1, absolute_parents=[1])])
    assert r.status_code == 400 and "absolute_parent_ids[0]" in r.json()["message"]
    r = await front.client.post(url, json=[job(1, absolute_job_group_id=1)])
    assert r.status_code == 400 and "absolute_job_group_id" in r.json()["message"]
    r = await front.client.post(f"/api/v1alpha/batches/{b['id']}/updates/9/jobs/create", json=[job(1)])
    assert r.status_code == 404


async def test_jobs_after_commit_are_refused(front):
    b = (await front.client.post("/api/v1alpha/batches/create-fast",
                                 json={"batch": batch(1), "bunch": dag(1), "job_groups": []})).json()
    url = f"/api/v1alpha/batches/{b['id']}/updates/1/jobs/create"
    assert (await front.client.post(url, json=dag(1))).status_code == 200  # a resend of the committed bunch
    r = await front.client.post(url, json=[job(2)])
    assert r.status_code == 400


async def test_oversized_bodies_get_413(front):
    big = b'{"batch": "' + b"x" * (8 * 1024 * 1024 + 1) + b'"}'
    r = await front.client.post("/api/v1alpha/batches/create-fast", content=big,
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["message"]


async def test_bad_path_and_query_parameters_get_400(front):
    for url in ("/api/v1alpha/batches/abc", "/api/v1alpha/batches/0", "/api/v1alpha/batches/99999999999999999999",
                "/api/v1alpha/batches?limit=0", "/api/v1alpha/batches/1/jobs/1/log/main?attempt_id=../x"):
        r = await front.client.get(url)
        assert r.status_code in (400, 404), (url, r.text)
        assert r.status_code != 500
    assert (await front.client.get("/api/v1alpha/batches?last_batch_id=x")).status_code == 400
    r = await front.client.get("/api/v1alpha/batches/1/jobs?recursive=maybe")
    assert r.status_code in (400, 404)


async def test_log_outage_is_503_and_the_retry_appends_the_same_events(front, monkeypatch):
    from events.errors import LogError

    body = {"batch": batch(2, token="outage"), "bunch": dag(2), "job_groups": []}
    real_append = front.deps.publisher.append  # the log's side of publishing (encoding is the front's)

    async def down(messages):
        raise LogError("broker unreachable")

    monkeypatch.setattr(front.deps.publisher, "append", down)
    r = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert r.status_code == 503 and "retry" in r.json()["message"]
    assert await front.events() == []

    # the log is back, but the process "crashes" after appending and before recording
    async def append_then_crash(messages):
        await real_append(messages)
        raise LogError("connection lost after the append")

    monkeypatch.setattr(front.deps.publisher, "append", append_then_crash)
    assert (await front.client.post("/api/v1alpha/batches/create-fast", json=body)).status_code == 503
    first = [e.event_id for e in await front.events()]
    monkeypatch.setattr(front.deps.publisher, "append", real_append)
    r = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert r.status_code == 200
    events = await front.events()
    assert [e.event_id for e in events] == first + first  # re-appended with the same ids: consumers dedupe
    again = await front.client.post("/api/v1alpha/batches/create-fast", json=body)
    assert again.json() == r.json() and len(await front.events()) == len(events)  # now recorded: nothing more
