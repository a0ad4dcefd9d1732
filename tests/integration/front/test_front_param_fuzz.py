"""Every path and query parameter of every API route, fuzzed with hostile values: never a 5xx.

The routes come from the app itself (its OpenAPI document, which every API route is in), so a new
route is fuzzed without anyone listing it here; a route this test cannot derive parameters for
(hidden from OpenAPI, or a parameter of a type it has no strategy for) fails
`test_every_route_is_fuzzed` until it is covered. Schemathesis (test_front_fuzz.py) generates from
the declared schemas and missed every 5xx the probe found; these strategies aim at them: NUL,
lone surrogates, bytes that are not UTF-8, unicode digits, numbers past every integer column,
very long values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from front_harness import Front, make_front
from front_specs import batch, job
from hypothesis import HealthCheck, given, settings
from starlette.routing import Mount, Route

from events.memory_log import MemoryEventLog
from events.objectstore import InMemoryObjectStore
from events.topics import Topics
from services.front.asgi_app import create_app
from tests.fuzz_params import Param, encode, int_param, request_parts, sweep, text_param

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

EXAMPLES = 40
# Values that reach rows of the seeded database, so hostile values meet handlers past their first check.
VALID_INTS: dict[str, list[int]] = {"batch_id": [1, 2], "update_id": [1, 2], "job_id": [1, 2],
                                    "job_group_id": [0, 1], "last_batch_id": [1, 3], "last_job_id": [0, 1],
                                    "last_job_group_id": [0], "limit": [1, 50]}
VALID_TEXTS: dict[str, list[str]] = {"q": ["job_id=", "has:", "a=", "user:", "billing_project:", "!job_id=",
                                           "running", "job_id=1 a="],
                                     "billing_project": ["alice-project", "bob"], "container": ["main", "input"],
                                     "recursive": ["true", "false"], "attempt_id": ["a1"]}
# Routes the framework adds that take no parameters (not in OpenAPI, fuzzed with a stray query only).
PARAMETERLESS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics"}
# A body the route accepts, so a hostile path or query value is what decides the answer.
BODIES: dict[str, bytes] = {"/api/v1alpha/billing_limits/{billing_project}/edit": b'{"limit": 5}'}
UI_MOUNT = "/ui"  # tests/integration/webui/test_webui_param_fuzz.py fuzzes the UI's own routes


def _app() -> Any:
    return create_app(None, metrics=True)  # type: ignore[arg-type]  # routes only: no request is served


def _operations() -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
    """(method, path template, path params, query params) with each parameter's JSON type."""
    out = []
    for path, ops in _app().openapi()["paths"].items():
        for method, op in ops.items():
            kinds: dict[str, dict[str, str]] = {"path": {}, "query": {}}
            for p in op.get("parameters", []):
                schema = p["schema"]
                types = {schema.get("type")} | {a.get("type") for a in schema.get("anyOf", [])}
                types -= {None, "null"}
                kinds[p["in"]][p["name"]] = "|".join(sorted(types))
            out.append((method.upper(), path, kinds["path"], kinds["query"]))
    for path in sorted(PARAMETERLESS):
        out.append(("GET", path, {}, {}))
    return out


OPERATIONS = _operations()


def _strategy(name: str, kind: str) -> Param:
    if kind == "integer":
        return int_param(VALID_INTS.get(name))
    if kind == "string":
        return text_param(VALID_TEXTS.get(name))
    raise AssertionError(f"no strategy for parameter {name} of type {kind!r}: add one to this test")


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for route in routes:
        if hasattr(route, "original_router"):  # an included APIRouter (FastAPI keeps it whole)
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            yield prefix + route.path, route


def test_every_route_is_fuzzed() -> None:
    """Each route of the app is in OPERATIONS with a strategy for each of its parameters."""
    fuzzed = {path for _, path, _, _ in OPERATIONS}
    for path, route in _walk(_app().routes):
        if isinstance(route, Mount):
            assert path == UI_MOUNT, f"mounted app at {path} is not fuzzed: add a test for its routes"
            continue
        assert isinstance(route, Route), f"{path}: a {type(route).__name__} this test does not know"
        assert path in fuzzed, (f"{path} is not fuzzed: it is hidden from OpenAPI (include_in_schema=False); "
                                "show it there or add it to PARAMETERLESS if it takes no parameters")
        assert getattr(route, "include_in_schema", True) or path in PARAMETERLESS, path
    for _method, _path, path_params, query_params in OPERATIONS:
        for name, kind in {**path_params, **query_params}.items():
            _strategy(name, kind)


async def _seed(front: Front) -> None:
    """Two batches of alice's (one with a job group and an update), and an operator."""
    await front.sql("UPDATE front_users SET is_operator = true WHERE name = 'alice'")
    r = await front.client.post("/api/v1alpha/batches/create-fast", json={
        "batch": batch(2, n_job_groups=1), "job_groups": [{"job_group_id": 1}],
        "bunch": [job(1), job(2, parents=[1])]})
    assert r.status_code == 200, r.text
    r = await front.client.post("/api/v1alpha/batches/create", json=batch(1, token="tok-2"))
    assert r.status_code == 200, r.text
    r = await front.client.post("/api/v1alpha/batches/1/updates/create", json={"token": "u2", "n_jobs": 1})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method,template,path_params,query_params", OPERATIONS,
                         ids=[f"{m} {p}" for m, p, _, _ in OPERATIONS])
def test_no_parameter_value_gets_a_server_error(fresh_db: str, tmp_path: Path, method: str, template: str,
                                                path_params: dict[str, str], query_params: dict[str, str]) -> None:
    with asyncio.Runner() as runner:
        topics = Topics(prefix="fuzz.")
        log = MemoryEventLog()
        runner.run(log.create_topics(topics.specs()))
        fronts = make_front(fresh_db, log, topics, InMemoryObjectStore(), "squall-system")
        front = runner.run(fronts.__anext__())
        try:
            runner.run(_seed(front))
            path_specs = {n: _strategy(n, k) for n, k in path_params.items()}
            query_specs = {n: _strategy(n, k) for n, k in query_params.items()}

            def check(path: dict[str, str], query: str) -> None:
                target = template.format(**path) + (f"?{query}" if query else "")
                answer = runner.run(_send(front.client, method, target, BODIES.get(template)))
                assert answer.status_code < 500, f"{method} {target} -> {answer.status_code}: {answer.text[:300]}"

            for path, query in sweep(path_specs, query_specs):
                check(path, query)

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(parts=request_parts(path_specs, query_specs))
            def fuzz(parts: tuple[dict[str, str], str]) -> None:
                check(*parts)

            fuzz()
        finally:
            runner.run(fronts.aclose())
            runner.run(log.close())


async def _send(client: httpx.AsyncClient, method: str, target: str, body: bytes | None) -> httpx.Response:
    # httpx would re-encode a str URL; a raw target reaches the app exactly as generated
    url = httpx.URL(str(client.base_url).rstrip("/")).copy_with(raw_path=target.encode("ascii"))
    content = (body or b"{}") if method in ("POST", "PUT") else None
    return await client.request(method, url, content=content, headers={"Content-Type": "application/json"})


def test_the_strategies_reach_the_values_that_used_to_fail() -> None:
    """A check of the strategies themselves: the probe's values are among what they generate."""
    assert encode("a\x00b") == "a%00b" and encode("²") == "%C2%B2" and encode("\ud800") == "%ED%A0%80"
