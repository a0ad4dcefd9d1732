"""A schemathesis fuzz run over the published OpenAPI document: no input may produce a 5xx.

Hail's client retries 5xx forever, so a server error on bad input would hang it. The server is
the real uvicorn front (memory log, real PostgreSQL, the read-model projection running), with a
few batches created first so generated ids hit real rows as well as missing ones. The example
count per operation is bounded so the whole run stays well under two minutes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from live_front import LiveFront

from deploy.postgres import create_database, drop_database
from events.topics import Topics
from services.front.server import apply_migrations
from services.front.users import create_user
from tests.optional import import_or_skip

schemathesis = import_or_skip("schemathesis", "pip install -e '.[dev]' (make venv does)")

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES_PER_OPERATION = 20


@pytest.fixture(scope="module")
def fuzz_front(pg_url: str, storage_endpoint: str) -> Iterator[tuple[LiveFront, str]]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_url, name)
    try:
        apply_migrations(url)
        import asyncio

        async def user() -> str:
            async with await psycopg.AsyncConnection.connect(url) as conn:
                return (await create_user(conn, "fuzz", "fuzz")).token

        token = asyncio.run(user())
        topics = Topics(prefix=f"f{uuid.uuid4().hex[:10]}.")
        with LiveFront(url, topics, storage_endpoint) as live:
            headers = {"Authorization": f"Bearer {token}"}
            for i in range(3):
                r = httpx.post(f"{live.url}/api/v1alpha/batches/create-fast", headers=headers, json={
                    "batch": {"billing_project": "fuzz", "token": f"seed{i}", "n_jobs": 1, "n_job_groups": 1},
                    "job_groups": [{"job_group_id": 1}],
                    "bunch": [{"job_id": 1, "process": {"type": "docker", "image": "a", "command": []}}]})
                assert r.status_code == 200, r.text
            yield live, token
    finally:
        try:
            drop_database(pg_url, name)
        except Exception:
            pass


def test_no_input_gets_a_server_error(fuzz_front):
    """Every operation of the OpenAPI document, fuzzed with schemathesis' generated cases."""
    live, token = fuzz_front
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    headers = {"Authorization": f"Bearer {token}"}
    server_errors: list[str] = []
    statuses: Counter[int] = Counter()
    n_cases = 0

    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case) -> None:
            nonlocal n_cases
            n_cases += 1
            response = case.call(base_url=live.url, headers=headers, timeout=30)
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                     f"{response.text[:300]}\n{case.as_curl_command()}")

        fuzz()
    print(f"fuzzed {n_cases} cases; statuses {dict(sorted(statuses.items()))}")
    assert n_cases > 100 and statuses[200] > 0
    assert not server_errors, "\n\n".join(server_errors[:10])
