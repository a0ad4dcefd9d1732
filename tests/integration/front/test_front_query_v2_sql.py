"""The v2 query language's SQL against real PostgreSQL, through the /api/v2alpha listings.

Batches and jobs are created through the API; their read-model rows (counters, states, attempts,
costs) are seeded directly with exact values, so each term's meaning is pinned down: which jobs
`duration > 60` means when a job had two attempts, which batches `name != x` means when some have
no name, that `%` in `=~ 50%` is literal, and so on.
"""

from __future__ import annotations

import json

import pytest
from front_specs import batch, job

pytestmark = pytest.mark.postgres

T0 = 1767225600000  # 2026-01-01T00:00:00Z
CREATED = 1_700_000_000_000  # the harness clock: every batch's time_created (2023-11-14T22:13:20Z)

# job_id: (state, exit_code, attributes, worker_type, preemptible, machine_type, cost, end_time,
#          [(attempt_id, instance, start, end)])
JOBS = {
    1: ("Success", 0, {"name": "align", "tag": "foo"}, "standard", True, None, 0.5, T0 + 600_000,
        [("a1", "w-std-1", T0, T0 + 600_000)]),
    2: ("Failed", 1, {"name": "sort"}, "highmem", False, None, 0.001, T0 - 3_570_000,
        [("a2", "w-hm-1", T0 - 3_600_000, T0 - 3_570_000)]),
    3: ("Error", None, {"name": "Sort-Big", "tag": "50%_off"}, "standard", True, "n1-standard-4", 0.02,
        T0 + 86_490_000,
        [("a3a", "w-std-2", T0 + 43_200_000, T0 + 43_205_000), ("a3", "jp-1", T0 + 86_400_000, T0 + 86_490_000)]),
    4: ("Running", None, {"name": "final"}, "standard", True, None, 0.0, None, [("a4", "w-std-1", T0 + 172_800_000,
                                                                                 None)]),
    5: ("Pending", None, {}, "standard", True, None, 0.0, None, []),
}


async def _create(front, n_jobs: int, token: str, headers=None, **attributes) -> int:
    r = await front.client.post("/api/v1alpha/batches/create-fast", headers=headers, json={
        "batch": batch(n_jobs, token=token, attributes=attributes, billing_project="alice-project"
                       if headers is None else "bob"),
        "bunch": [job(i) for i in range(1, n_jobs + 1)], "job_groups": []})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


async def _seed_jobs(front, batch_id: int) -> None:
    for job_id, (state, exit_code, attrs, worker_type, preemptible, machine_type, cost, end, attempts) in JOBS.items():
        spec = {"process": {"type": "docker"}, "resources": {"machine_type": machine_type} if machine_type else {}}
        await front.sql(
            'INSERT INTO jobs (batch_id, job_id, job_group_id, update_id, name, "user", billing_project, state, '
            "committed, always_run, n_max_attempts, parent_ids, attributes, spec, cores_mcpu, memory_bytes, "
            "storage_gib, preemptible, worker_type, exit_code, time_created, end_time, cost) VALUES "
            "(%s, %s, 0, 1, %s, 'alice', 'alice-project', %s, true, false, 20, '{}', %s, %s, 1000, 1, 0, %s, %s, %s, "
            "1000, %s, %s)",
            (batch_id, job_id, attrs.get("name"), state, json.dumps(attrs), json.dumps(spec), preemptible,
             worker_type, exit_code, end, cost))
        for attempt_id, instance, start, stop in attempts:
            await front.sql("INSERT INTO attempts (batch_id, job_id, attempt_id, instance_name, start_time, end_time) "
                            "VALUES (%s, %s, %s, %s, %s, %s)", (batch_id, job_id, attempt_id, instance, start, stop))


async def _seed_batch(front, batch_id: int, *, n_jobs: int, n_completed: int, n_succeeded: int, n_failed: int,
                      cost: float, time_completed: int | None) -> None:
    await front.sql(
        'INSERT INTO batches (batch_id, "user", billing_project, token, state, n_jobs, n_completed, n_succeeded, '
        "n_failed, time_created, time_completed, cost) VALUES (%s, 'alice', 'alice-project', 't', %s, %s, %s, %s, "
        "%s, %s, %s, %s)",
        (batch_id, "complete" if n_completed == n_jobs else "running", n_jobs, n_completed, n_succeeded, n_failed,
         CREATED, time_completed, cost))


@pytest.fixture
async def jobs_batch(front) -> int:
    batch_id = await _create(front, 5, "jobs")
    await _seed_jobs(front, batch_id)
    return batch_id


async def _job_ids(front, batch_id: int, q: str) -> list[int]:
    r = await front.client.get(f"/api/v2alpha/batches/{batch_id}/job-groups/0/jobs",
                               params={"q": q, "recursive": "true"})
    assert r.status_code == 200, (q, r.text)
    return [j["job_id"] for j in r.json()["jobs"]]


@pytest.mark.parametrize(("q", "expected"), [
    ("", [1, 2, 3, 4, 5]),
    ("state = failed", [2]),
    ("state = bad", [2, 3]),
    ("state != done", [4, 5]),
    ("state == success", [1]),
    ("state=live", [4]),
    ('name == "sort"', [2]),
    ("name = Sort", []),                       # exact matches are case-sensitive
    ("name =~ sort", [2, 3]),                  # partial matches are not
    ("name !~ sort", [1, 4]),                  # job 5 has no name: a negation needs the attribute
    ("name != sort", [1, 3, 4]),
    ("tag =~ 50%", [3]),
    ("tag =~ _", [3]),                         # LIKE's wildcards are literal
    ("duration > 60", [1, 3]),
    ("duration <= 30", [2, 3]),                # some attempt: job 3's first one took 5 s
    ("cost >= 0.01", [1, 3]),
    ("cost < $0.01", [2, 4, 5]),
    ("start_time >= 2026-01-01T00:00:00Z", [1, 3, 4]),
    ("start_time < 2026-01-01", [2]),
    ("end_time >= 2026-01-01T00:10:00Z", [1, 3]),
    ("end_time != 2026-01-01T00:10:00Z", [2, 3]),
    ("instance_collection = standard", [1, 4, 5]),
    ("instance_collection = highmem-np", [2]),
    ("instance_collection = job-private", [3]),
    ("instance_collection =~ HIGH", [2]),
    ("instance = w-std-1", [1, 4]),
    ("instance =~ w-std", [1, 3, 4]),
    ("instance != w-std-1", [2, 3]),
    ("instance !~ std", [2, 3]),
    ("exit_code = 1", [2]),
    ("exit_code != 1", [1, 3, 4, 5]),
    ("exit_code = NULL", [3, 4, 5]),
    ("exit_code != NULL", [1, 2]),
    ("exit_code < 1", [1]),
    ("job_id >= 3", [3, 4, 5]),
    ("job_id == 2", [2]),
    ('"sort"', [2]),
    ('"tag"', [1, 3]),                         # a key matches too
    ('"w-hm-1"', [2]),                         # and an instance name
    ("sort", [2, 3]),
    ("std-2", [3]),
    ("AL", [1, 4]),                            # align, final
    ("state = bad\nname =~ big", [3]),
    ("\nstate = bad\n\ninstance_collection = highmem-np\n", [2]),
])
async def test_job_terms(front, jobs_batch, q, expected):
    assert await _job_ids(front, jobs_batch, q) == expected


async def test_job_listing_routes_and_paging(front, jobs_batch):
    root = await front.client.get(f"/api/v2alpha/batches/{jobs_batch}/jobs", params={"q": "state = bad"})
    assert [j["job_id"] for j in root.json()["jobs"]] == [2, 3]
    entry = root.json()["jobs"][0]
    assert set(entry) >= {"batch_id", "job_id", "name", "state", "exit_code", "end_time", "duration", "cost"}
    page = await front.client.get(f"/api/v2alpha/batches/{jobs_batch}/jobs", params={"last_job_id": 3})
    assert [j["job_id"] for j in page.json()["jobs"]] == [4, 5]
    assert (await front.client.get(f"/api/v2alpha/batches/{jobs_batch}/jobs", headers=front.bob)).status_code == 404
    assert (await front.client.get(f"/api/v2alpha/batches/{jobs_batch}/job-groups/7/jobs")).status_code == 404


@pytest.mark.parametrize(("q", "words"), [
    ("state >= 1", ["line 1", "state >= 1", "unexpected operator"]),
    ("state = failed\nduration >= abcd", ["line 2", "expected float, but found abcd"]),
    ("job_id = ١", ["expected int, but found"]),
    ("job_id >= 1 abcde", ["could not parse term"]),
    ("state = nope", ['unknown state "nope"']),
    ("name = a\x00", ["NUL"]),
])
async def test_bad_job_queries_are_400s_naming_the_term(front, jobs_batch, q, words):
    r = await front.client.get(f"/api/v2alpha/batches/{jobs_batch}/jobs", params={"q": q})
    assert r.status_code == 400
    for word in words:
        assert word in r.json()["message"]


@pytest.fixture
async def batches(front) -> dict[str, int]:
    ids = {"A": await _create(front, 5, "a", tag="t1", name="alpha-one"),
           "B": await _create(front, 2, "b", tag="t1", name="beta-two"),
           "C": await _create(front, 1, "c", name="gamma"),
           "D": await _create(front, 1, "d", headers=front.bob, name="alpha-one")}
    await _seed_batch(front, ids["A"], n_jobs=5, n_completed=3, n_succeeded=1, n_failed=2, cost=0.521,
                      time_completed=None)
    await _seed_batch(front, ids["B"], n_jobs=2, n_completed=2, n_succeeded=2, n_failed=0, cost=0.0,
                      time_completed=CREATED + 90_000)
    assert (await front.client.patch(f"/api/v1alpha/batches/{ids['C']}/cancel")).status_code == 200
    return ids


@pytest.mark.parametrize(("q", "expected"), [
    (None, "CBA"),                             # Hail's default: `user = <caller>`
    ("", "CBA"),
    ("tag = t1", "BA"),
    ("tag =~ T1", "BA"),
    ("name !~ beta", "CA"),
    ("name != beta-two", "CA"),
    ("alpha", "A"),                            # never bob's D
    ('"alpha-one"', "A"),
    ('"alpha"', ""),
    ("state = complete", "B"),
    ("state = running", "CA"),
    ("state = cancelled", "C"),
    ("state = failure", "A"),
    ("state = success", "B"),
    ("state != success", "CA"),
    ("state = open", ""),
    ("state = closed", "CBA"),
    ("cost > 0.5", "A"),
    ("cost = 0", "CB"),
    ("user = alice", "CBA"),
    ("user = bob", ""),                        # a query never widens what the caller may see
    ("billing_project = alice-project", "CBA"),
    ("start_time >= 2023-11-14T22:13:20Z", "CBA"),
    ("start_time > 2023-11-14T22:13:20Z", ""),
    ("end_time <= 2023-11-14T22:14:50Z", "B"),
    ("duration > 60", "B"),
    ("duration < 60", ""),
    ("tag = t1\nstate = complete", "B"),
])
async def test_batch_terms(front, batches, q, expected):
    params = {} if q is None else {"q": q}
    r = await front.client.get("/api/v2alpha/batches", params=params)
    assert r.status_code == 200, r.text
    by_id = {v: k for k, v in batches.items()}
    assert "".join(by_id[b["id"]] for b in r.json()["batches"]) == expected


async def test_batch_id_terms_and_paging(front, batches):
    a, b, c = batches["A"], batches["B"], batches["C"]
    listed = lambda r: [x["id"] for x in r.json()["batches"]]  # noqa: E731
    assert listed(await front.client.get("/api/v2alpha/batches", params={"q": f"batch_id = {a}"})) == [a]
    assert listed(await front.client.get("/api/v2alpha/batches", params={"q": f"batch_id > {a}"})) == [c, b]
    page = await front.client.get("/api/v2alpha/batches", params={"limit": 2})
    assert listed(page) == [c, b] and page.json()["last_batch_id"] == b
    rest = await front.client.get("/api/v2alpha/batches", params={"limit": 2, "last_batch_id": b})
    assert listed(rest) == [a]
    bad = await front.client.get("/api/v2alpha/batches", params={"q": "duration >= abcd"})
    assert bad.status_code == 400 and "expected float, but found abcd" in bad.json()["message"]
    assert (await front.client.get("/api/v2alpha/batches", params={"last_batch_id": "٣"})).status_code == 400
