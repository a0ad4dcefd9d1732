"""The batch and job pages of a batch whose jobs were retried under retry policies (with the batch's cost
per Hail resource: issue #18's screenshot of retries and cost), in headless Chromium
(the same server and browser as test_webui_browser.py). The read model holds what the projection made
of the core's own decisions (webui_retry_seed.py). Screenshots: artifacts/screenshots/batch-retries.png
and job-retries.png."""

from __future__ import annotations

import pytest
from test_webui_browser import SCREENSHOTS, browser, page, recorder, server  # noqa: F401 (fixtures)
from webui_cdp import Page
from webui_retry_seed import RETRY_BATCH, seed_retry_batch
from webui_seed import UiDb

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def retry_batch(ui_db: UiDb) -> int:
    seed_retry_batch(ui_db.url)
    return RETRY_BATCH


def test_the_batch_page_shows_each_retry_with_its_reason(page: Page, server: str, retry_batch: int) -> None:  # noqa: F811
    page.navigate(f"{server}/ui/batches/{retry_batch}")
    page.wait_for("document.querySelectorAll('#jobs tr.job').length === 4")
    rows = page.evaluate("[...document.querySelectorAll('#jobs tr.job')].map(r => ["
                         "r.querySelector('.badge').textContent, "
                         "[...r.querySelectorAll('.retry')].map(s => s.dataset.rule)])")
    assert rows == [["Success", ["oom_memory_multiplier"]], ["Success", ["retry_exit_codes", "retry_exit_codes"]],
                    ["Running", ["max_preemptions"]], ["Failed", ["oom_memory_multiplier"]]]
    reasons = page.evaluate("[...document.querySelectorAll('#jobs .retry')].map(s => s.textContent)")
    assert reasons[0] == "out of memory at 231 MiB: retried at once with 462 MiB (retry_policy.oom_memory_multiplier)"
    assert reasons[1] == "exit code 42 is listed in retry_policy.retry_exit_codes: retried with backoff"
    assert reasons[3].startswith("preempted once too often (retry_policy.max_preemptions)")
    # the reasons wrap inside their own cell: none runs into the next column or off the page
    overflow = page.evaluate("[...document.querySelectorAll('#jobs .retry')].map(s => "
                             "s.getBoundingClientRect().right - s.closest('td').getBoundingClientRect().right)")
    assert overflow and max(overflow) <= 0, overflow
    assert page.evaluate("document.querySelector('#jobs').getBoundingClientRect().right") <= \
        page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.querySelector('#batch-retry-policy').textContent") == \
        "non-preemptible after 1 preemption(s)"
    # the same page shows what the retries cost, per Hail resource (the attempts that failed count too)
    resources = page.evaluate("[...document.querySelectorAll('#cost-breakdown tr[data-resource]')]"
                              ".map(r => r.dataset.resource)")
    assert resources == ["compute/n1-nonpreemptible/1", "compute/n1-preemptible/1", "memory/n1-nonpreemptible/1",
                         "memory/n1-preemptible/1", "service-fee/1"]  # job 3's retry runs non-preemptible
    assert page.evaluate("document.querySelector('#cost-total').textContent").endswith(" so far")
    shares = page.evaluate("[...document.querySelectorAll('#cost-breakdown meter')].map(m => m.value)")
    assert abs(sum(shares) - 1) < 1e-9, shares
    shot = page.screenshot(SCREENSHOTS / "batch-retries.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_the_job_page_shows_each_attempts_resources_and_why_it_was_retried(
        page: Page, server: str, retry_batch: int) -> None:  # noqa: F811
    page.navigate(f"{server}/ui/batches/{retry_batch}/jobs/1")
    cells = page.evaluate("[...document.querySelectorAll('#attempts tbody tr')].map(r => "
                          "[...r.children].map(td => td.textContent.trim()))")
    header = page.evaluate("[...document.querySelectorAll('#attempts th')].map(th => th.textContent)")
    memory, outcome, retried = header.index("Memory"), header.index("Outcome"), header.index("Retried because")
    assert [(c[memory], c[outcome], c[retried]) for c in cells] == [
        ("231.0 MiB", "Failed", "out of memory at 231 MiB: retried at once with 462 MiB "
                                "(retry_policy.oom_memory_multiplier)"),
        ("462.0 MiB", "Success", "")]
    assert page.evaluate("document.querySelector('#retry-policy').textContent") == \
        "out of memory: memory \u00d7 2 up to 462.0 MiB; non-preemptible after 1 preemption(s)"
    # thirteen columns, yet the table fits the window: times and reasons wrap in their cells
    assert page.evaluate("document.querySelector('#attempts').getBoundingClientRect().right") <= \
        page.evaluate("document.documentElement.clientWidth")
    page.screenshot(SCREENSHOTS / "job-retries.png")

    page.navigate(f"{server}/ui/batches/{retry_batch}/jobs/3")
    instances = page.evaluate("[...document.querySelectorAll('#attempts tbody tr')].map(r => "
                              "r.children[1].textContent.trim())")
    assert instances == ["w-hc1", "w-np1 non-preemptible"]
