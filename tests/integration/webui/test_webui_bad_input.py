"""The probe's bad UI inputs that used to get a 500: each is a 400 now, and good ones still work."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from webui_seed import sign_in

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("url", [
    "/ui/batches?last_batch_id=%C2%B2",                 # '²' passes str.isdigit(), not int()
    "/ui/batches?last_batch_id=99999999999999999999999",  # beyond PostgreSQL's bigint
    "/ui/batches?q=name%3Da%00b",                       # NUL: PostgreSQL refuses it in text
    "/ui/batches?q=has:%00",
    "/ui/batches?q=%ED%A0%80",                          # a lone surrogate, UTF-8 encoded
    "/ui/batches/1?q=name%3Da%00b",
    "/ui/batches/1?last_job_id=%D9%A1",                 # '١' (Arabic-Indic one)
    "/ui/batches/1/jobs/2/log/main?tail=%C2%B2",
    "/ui/batches/1/jobs/1?attempt_id=a%00",
    "/ui/login?next=/ui/%00",
])
def test_bad_parameters_get_400(client: TestClient, url: str) -> None:
    sign_in(client)
    answer = client.get(url)
    assert answer.status_code == 400, (url, answer.status_code, answer.text[:300])


def test_good_parameters_still_work(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/ui/batches?last_batch_id=3&q=running").status_code == 200
    assert client.get("/ui/batches/1?last_job_id=1").status_code == 200
    assert client.get("/ui/batches/1/jobs/2/log/main?tail=5").status_code == 200
    assert client.get("/ui/batches/1?q=bad+term+%3D").status_code in (200, 400)
