"""The UI in a real browser: headless Chromium against uvicorn on a loopback port, with seeded data.

The server is the UI mounted at /ui next to a stand-in for the API's cancel endpoint (the real one
belongs to the front end): it records each PATCH and its Authorization header, so the test sees
that the cancel button reached the API with the signed-in user's token. Screenshots land in
artifacts/screenshots/ (batch.png is the batch page) and are kept as test artefacts.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from webui_cdp import Browser, Page, find_or_install_chromium
from webui_seed import ALICE_TOKEN, UiDb

from events.objectstore.gcs import GcsObjectStore
from events.objectstore.layout import log_chunk_key
from services.jobdata import JobData
from services.webui import create_ui

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SCREENSHOTS = Path(__file__).resolve().parents[3] / "artifacts" / "screenshots"


class CancelRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []

    async def cancel(self, request: Request) -> JSONResponse:
        self.calls.append((request.path_params["batch_id"], request.headers.get("authorization")))
        return JSONResponse({})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def recorder() -> CancelRecorder:
    return CancelRecorder()


@pytest.fixture(scope="module")
def server(ui_db: UiDb, recorder: CancelRecorder) -> Iterator[str]:
    store = GcsObjectStore(endpoint=ui_db.storage_endpoint)
    app = Starlette(routes=[
        Route("/api/v1alpha/batches/{batch_id:int}/cancel", recorder.cancel, methods=["PATCH"]),
        Mount("/ui", app=create_ui(ui_db.url, JobData(store, ui_db.bucket))),
    ])
    port = free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                   lifespan="on"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uvicorn_server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=15)
        asyncio.run(store.close())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser(find_or_install_chromium())
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A tab signed in as alice through the login form."""
    tab = browser.page()
    # every document records what its Content-Security-Policy blocked (test_no_page_breaks_its_csp)
    tab.send("Page.addScriptToEvaluateOnNewDocument", source=(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push("
        "e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));"))
    try:
        tab.navigate(f"{server}/ui/batches")
        tab.wait_for("location.pathname === '/ui/login'")
        tab.evaluate(f"document.querySelector('#token').value = {ALICE_TOKEN!r}")
        tab.evaluate("document.querySelector('#sign-in').click()")
        tab.wait_for("location.pathname === '/ui/batches' && document.readyState === 'complete'")
        yield tab
    finally:
        tab.close()


def test_sign_in_lands_on_the_users_batches(page: Page) -> None:
    assert page.evaluate("document.querySelector('#signed-in-user').textContent") == "alice"
    links = page.evaluate("[...document.querySelectorAll('#batches a')].map(a => a.textContent)")
    assert links == ["2", "1"]
    # the token cookie is HttpOnly: no script on the page can read it
    assert "squall_ui_token" not in page.evaluate("document.cookie")
    page.screenshot(SCREENSHOTS / "batches.png")


def test_the_batch_page_shows_its_jobs(page: Page, server: str) -> None:
    page.navigate(f"{server}/ui/batches/1")
    page.wait_for("document.querySelectorAll('#jobs tr.job').length === 4")
    states = page.evaluate("[...document.querySelectorAll('#jobs tr.job .badge')].map(b => b.textContent)")
    assert states == ["Success", "Running", "Ready", "Failed"]
    shot = page.screenshot(SCREENSHOTS / "batch.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_batch_page_shows_its_cost_breakdown(page: Page, server: str) -> None:
    """The cost panel as a user sees it: one row per Hail resource with its share drawn as a meter (the
    stylesheet applies under the CSP), and a screenshot of the panel for review."""
    page.navigate(f"{server}/ui/batches/1")
    page.wait_for("document.querySelector('#cost-breakdown') !== null")
    resources = page.evaluate("[...document.querySelectorAll('#cost-breakdown tr[data-resource]')]"
                              ".map(r => r.dataset.resource)")
    assert resources == ["compute/n1-preemptible/1", "disk/local-ssd/preemptible/1", "memory/n1-preemptible/1",
                         "service-fee/1"]
    shares = page.evaluate("[...document.querySelectorAll('#cost-breakdown meter')].map(m => m.value)")
    assert [round(s, 3) for s in shares] == [0.496, 0.008, 0.171, 0.325] and abs(sum(shares) - 1) < 1e-9
    assert page.evaluate("document.querySelector('#cost-breakdown meter').getBoundingClientRect().width") > 20
    assert page.evaluate("document.querySelector('#cost-total').textContent") == "$0.0123 so far"
    assert page.evaluate("getComputedStyle(document.querySelector('#cost-breakdown td.num')).textAlign") == "right"
    page.evaluate("document.querySelector('#cost-breakdown').scrollIntoView()")
    box = page.evaluate("(() => { const r = document.querySelector('#cost-breakdown').getBoundingClientRect();"
                        " return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })()")
    data = page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                     clip={"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1})["data"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "batch-cost-breakdown.png"
    shot.write_bytes(base64.b64decode(data))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 3_000
    page.evaluate("scrollTo(0, 0)")
    page.screenshot(SCREENSHOTS / "batch-with-cost.png")


def test_the_job_page_follows_a_running_log(page: Page, server: str, ui_db: UiDb) -> None:
    page.navigate(f"{server}/ui/batches/1/jobs/2")
    assert page.evaluate("document.querySelector('#log-main').textContent") == "step 1 of 3\n"
    ui_db.put(log_chunk_key(1, 2, "a-2", "main", 12), b"step 2 of 3\n")  # the worker ships the next chunk
    page.wait_for("document.querySelector('#log-main').textContent.includes('step 2 of 3')", timeout_s=10)


def test_the_job_page_plots_resource_usage(page: Page, server: str) -> None:
    page.navigate(f"{server}/ui/batches/1/jobs/1")
    assert page.evaluate("document.querySelectorAll('#usage-main svg polyline').length") == 2
    page.screenshot(SCREENSHOTS / "job.png")


def test_the_instances_page_shows_pool_utilisation(page: Page, server: str) -> None:
    page.navigate(f"{server}/ui/instances")
    values = page.evaluate("[...document.querySelectorAll('#pools meter.meter')].map(m => m.value)")
    assert values == [0.25]
    assert page.evaluate("document.querySelector('#pools meter.meter').getBoundingClientRect().width") > 20
    page.screenshot(SCREENSHOTS / "instances.png")


def test_cancel_reaches_the_api_with_the_users_token(page: Page, server: str, recorder: CancelRecorder) -> None:
    page.navigate(f"{server}/ui/batches/1")
    page.evaluate("document.querySelector('#cancel-batch').click()")
    page.wait_for("document.querySelector('#cancel-outcome') !== null")
    assert page.evaluate("document.querySelector('#cancel-outcome').textContent.trim()") == "Cancel requested."
    assert page.dialogs == ["Cancel every job of batch 1 that has not finished?"]
    assert recorder.calls == [(1, f"Bearer {ALICE_TOKEN}")]
    page.screenshot(SCREENSHOTS / "batch-cancel-requested.png")


def test_the_batch_page_nests_its_jobs_under_their_job_groups(page: Page, server: str) -> None:
    page.navigate(f"{server}/ui/batches/1")
    page.wait_for("document.querySelectorAll('#job-groups li.job-group').length === 3")
    nesting = page.evaluate("""[...document.querySelectorAll('#job-groups li.job-group')].map(li =>
        [li.dataset.groupId, li.parentElement.closest('li.job-group')?.dataset.groupId ?? null,
         li.dataset.state, [...li.querySelectorAll(':scope > details > table tr.group-job')].map(tr => tr.dataset.groupJobId)])""")
    assert nesting == [["1", None, "failure", []], ["2", "1", "running", ["3"]], ["3", "1", "failure", ["4"]]]
    # every group shows its counts; the failed stage is open, so its failed job shows without a click
    assert page.evaluate("document.querySelector('li[data-group-id=\"3\"] > details').open") is True
    counts = page.evaluate("document.querySelector('li[data-group-id=\"1\"] .group-counts').textContent")
    assert "2 jobs" in counts and "1 ready" in counts and "1 failed" in counts
    shot = page.screenshot(SCREENSHOTS / "batch-job-groups.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    page.evaluate("document.querySelector('li[data-group-id=\"3\"] > details > summary > a').click()")
    page.wait_for("location.pathname === '/ui/batches/1/job-groups/3' && document.readyState === 'complete'")
    assert page.evaluate("[...document.querySelectorAll('#jobs tr.job')].map(tr => tr.dataset.jobId)") == ["4"]
    assert "align" in page.evaluate("document.querySelector('#crumbs').textContent")
    page.screenshot(SCREENSHOTS / "job-group.png")


def test_the_pool_page_shows_the_autoscalers_decisions(page: Page, server: str) -> None:
    page.navigate(f"{server}/ui/pools/standard")
    rows = page.evaluate("[...document.querySelectorAll('#decisions tbody tr')].map(tr => tr.cells[4].textContent)")
    assert rows == ["max_live_instances", ""]
    assert "local-b: 0/1 ok" in page.evaluate("document.querySelector('#zone-weights').textContent")
    page.screenshot(SCREENSHOTS / "pool.png")


def test_no_page_breaks_its_content_security_policy(page: Page, server: str) -> None:
    """Every page works under the UI's CSP: nothing on it is blocked and its stylesheet applies (its
    script runs too: test_the_job_page_follows_a_running_log needs it)."""
    for path in ("/ui/batches", "/ui/batches/1", "/ui/batches/1/jobs/1", "/ui/batches/1/jobs/2",
                 "/ui/batches/1/jobs/3", "/ui/batches/1/job-groups/3", "/ui/instances", "/ui/pools/standard",
                 "/ui/batches/999"):
        page.navigate(f"{server}{path}")
        assert page.evaluate("window.__cspViolations") == [], path
        assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") == "flex", path
