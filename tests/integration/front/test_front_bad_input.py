"""The probe's bad inputs that used to get a 5xx (which Hail's client retries forever): each is a 400.

Unicode digits pass `str.isdigit()` but not `int()`; NUL passes Python but PostgreSQL refuses it in
text; percent-encoded bytes that are not UTF-8 (a lone surrogate among them) are not text at all.
"""

from __future__ import annotations

import pytest
from front_specs import batch, job

pytestmark = pytest.mark.postgres


async def _batch_id(front) -> int:
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1), "bunch": [job(1)], "job_groups": []})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


@pytest.mark.parametrize("query", [
    "q=job_id%3D%C2%B2",          # job_id=² : a unicode digit
    "q=job_id%3D%D9%A1%D9%A2",    # job_id=١٢ : Arabic-Indic digits, which int() would take
    "q=name%3Da%00b",             # NUL in an attribute value
    "q=has:%00",                  # NUL in an attribute name
    "q=%ED%A0%80",                # a lone surrogate, UTF-8 encoded: not UTF-8
    "q=%FF",                      # not UTF-8 at all
    "last_job_id=%C2%B2",
])
async def test_bad_job_queries_get_400(front, query):
    batch_id = await _batch_id(front)
    for path in (f"/api/v1alpha/batches/{batch_id}/jobs", f"/api/v1alpha/batches/{batch_id}/job-groups/0/jobs"):
        r = await front.client.get(f"{path}?{query}")
        assert r.status_code == 400, (path, query, r.text)
        assert r.json()["message"], r.text


@pytest.mark.parametrize("query", ["q=name%3Da%00b", "q=has:%00", "q=user:%00", "q=%ED%A0%80",
                                   "last_batch_id=%C2%B2"])
async def test_bad_batch_queries_get_400(front, query):
    r = await front.client.get(f"/api/v1alpha/batches?{query}")
    assert r.status_code == 400, (query, r.text)


async def test_a_very_long_query_gets_a_4xx(front):
    # thousands of valid terms: each would become one more SQL condition
    r = await front.client.get("/api/v1alpha/batches?q=" + "has:a+" * 3000)
    assert r.status_code == 414, r.text
    assert "long" in r.json()["message"]


async def test_nul_in_a_billing_project_path_gets_400(front):
    r = await front.client.get("/api/v1alpha/billing_projects/%00")
    assert r.status_code == 400, r.text
    assert "NUL" in r.json()["message"]


async def test_nul_in_an_operators_billing_limit_edit_gets_400(front):
    await front.sql("UPDATE front_users SET is_operator = true WHERE name = 'alice'")
    r = await front.client.post("/api/v1alpha/billing_limits/%00/edit", json={"limit": 5})
    assert r.status_code == 400, r.text
    r = await front.client.post("/api/v1alpha/billing_limits/a%00b/edit", json={"limit": 5})
    assert r.status_code == 400, r.text


async def test_a_good_query_still_works(front):
    batch_id = await _batch_id(front)
    r = await front.client.get(f"/api/v1alpha/batches/{batch_id}/jobs?q=job_id%3D1")
    assert r.status_code == 200, r.text
    r = await front.client.get("/api/v1alpha/billing_projects/alice-project")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("image", ["../../etc/passwd", "a b", "-v/:/host busybox", "busybox\nid", "UPPER/Case:tag"])
async def test_an_image_that_is_not_a_reference_gets_400_at_submit(front, image):
    bad = job(1)
    bad["process"]["image"] = image
    r = await front.client.post("/api/v1alpha/batches/create-fast",
                                json={"batch": batch(1), "bunch": [bad], "job_groups": []})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert message.startswith("bunch[0].process.image:") and "not a valid image reference" in message, message
    assert await front.sql("SELECT count(*) FROM front_batches") == [(0,)]
