"""Every page and auth path of the UI, in-process, over the real read-model schema in PostgreSQL."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient
from webui_seed import (
    ALICE_TOKEN,
    BATCH_1_BREAKDOWN,
    BOB_TOKEN,
    RecordingTransport,
    UiDb,
    mounted_ui,
    sign_in,
)

from services.webui.session import COOKIE_NAME, csrf_token

pytestmark = pytest.mark.postgres


# --- auth ---------------------------------------------------------------------------------------

def test_pages_send_an_anonymous_visitor_to_sign_in_and_back(client: TestClient) -> None:
    answer = client.get("/ui/batches/1?q=bad")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fbatches%2F1%3Fq%3Dbad"
    form = client.get(answer.headers["location"])
    assert form.status_code == 200
    assert 'value="/ui/batches/1?q=bad"' in form.text

    signed = client.post("/ui/login", data={"token": ALICE_TOKEN, "next": "/ui/batches/1?q=bad"})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/batches/1?q=bad"
    cookie = signed.headers["set-cookie"]
    assert f"{COOKIE_NAME}={ALICE_TOKEN}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui/" in cookie


def test_a_wrong_token_is_refused_and_sets_no_cookie(client: TestClient) -> None:
    answer = client.post("/ui/login", data={"token": "not-a-token"})
    assert answer.status_code == 401
    assert "not valid" in answer.text
    assert "set-cookie" not in answer.headers


def test_sign_in_never_redirects_off_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        answer = client.post("/ui/login", data={"token": ALICE_TOKEN, "next": target})
        assert answer.headers["location"] == "/ui/batches", target


def test_a_revoked_token_cookie_is_cleared(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, "revoked-token", path="/ui/")
    answer = client.get("/ui/batches")
    assert answer.status_code == 303
    assert f'{COOKIE_NAME}=""' in answer.headers["set-cookie"]


def test_sign_out_forgets_the_token(client: TestClient) -> None:
    sign_in(client)
    answer = client.post("/ui/logout")
    assert answer.status_code == 303
    client.cookies.clear()  # the browser drops the expired cookie
    assert client.get("/ui/batches").status_code == 303


# --- batches ------------------------------------------------------------------------------------

def test_batches_lists_only_the_users_visible_batches_newest_first(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches")
    assert page.status_code == 200
    assert "nightly-align" in page.text
    assert page.text.index('href="/ui/batches/2"') < page.text.index('href="/ui/batches/1"')
    assert "bobs-batch" not in page.text and 'href="/ui/batches/3"' not in page.text
    assert "deleted-batch" not in page.text
    assert '<span class="badge failure">failure</span>' in page.text  # batch 1 has a failed job
    assert '<span class="badge success">success</span>' in page.text  # batch 2


@pytest.mark.parametrize(("q", "shown", "hidden"), [
    ("state = failure", [1], [2]),
    ("state != failure", [2], [1]),
    ("state = complete", [2], [1]),
    ("env = prod", [1], [2]),
    ('"env"', [1], [2]),
    ("nightly", [1], [2]),
    ("state = running\nname =~ ALIGN", [1], [2]),
    ("user = bob", [], [1, 2, 3]),  # a query never widens what the user may see
])
def test_batches_filter_with_hails_current_query_language(client: TestClient, q: str, shown: list[int],
                                                          hidden: list[int]) -> None:
    sign_in(client)
    page = client.get("/ui/batches", params={"q": q})
    assert page.status_code == 200
    assert '<textarea name="q" rows="3"' in page.text and f">{q}</textarea>" in page.text.replace("&#34;", '"')
    for batch_id in shown:
        assert f'href="/ui/batches/{batch_id}"' in page.text, q
    for batch_id in hidden:
        assert f'href="/ui/batches/{batch_id}"' not in page.text, q


@pytest.mark.parametrize(("q", "shown", "hidden"), [
    ("failure", [1], [2]),
    ("!failure", [2], [1]),
    ("complete", [2], [1]),
    ("env=prod", [1], [2]),
    ("has:env", [1], [2]),
    ("user:bob", [], [1, 2, 3]),
])
def test_a_ui_configured_for_v1_takes_the_legacy_language(ui_db: UiDb, api: RecordingTransport,
                                                         q: str, shown: list[int], hidden: list[int]) -> None:
    with mounted_ui(ui_db, api, query_version=1) as client:
        sign_in(client)
        page = client.get("/ui/batches", params={"q": q})
        assert page.status_code == 200 and '<input type="search" name="q"' in page.text
        for batch_id in shown:
            assert f'href="/ui/batches/{batch_id}"' in page.text, q
        for batch_id in hidden:
            assert f'href="/ui/batches/{batch_id}"' not in page.text, q
        bad = client.get("/ui/batches", params={"q": "colour:blue"})
        assert bad.status_code == 400 and "unknown term &#39;colour:blue&#39;" in bad.text


def test_a_bad_query_is_a_400_that_names_the_term(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches", params={"q": "env = prod\nstate = blue"})
    assert page.status_code == 400
    assert "line 2: &#39;state = blue&#39;: unknown state &#34;blue&#34;" in page.text
    nul = client.get("/ui/batches/1", params={"q": "name = a\x00"})
    assert nul.status_code == 400 and "NUL" in nul.text


def test_batches_page_through_older_batches(ui_db: UiDb, api: RecordingTransport) -> None:
    with mounted_ui(ui_db, api, page_size=1) as client:
        _page_through_batches(client)


def _page_through_batches(client: TestClient) -> None:
    sign_in(client)
    first = client.get("/ui/batches")
    assert 'href="/ui/batches/2"' in first.text and 'href="/ui/batches/1"' not in first.text
    assert 'id="older" href="/ui/batches?q=&amp;last_batch_id=2"' in first.text
    second = client.get("/ui/batches", params={"last_batch_id": 2})
    assert 'href="/ui/batches/1"' in second.text and 'href="/ui/batches/2"' not in second.text
    assert 'id="older"' not in second.text


# --- a batch ------------------------------------------------------------------------------------

def test_batch_page_shows_counters_and_the_job_table(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1")
    assert page.status_code == 200
    assert '<dd id="n-jobs">4</dd>' in page.text
    for job_id in (1, 2, 3, 4):
        assert f'data-job-id="{job_id}"' in page.text
    assert "1m 30s" in page.text          # job 1's duration
    assert "$0.0100" in page.text         # job 1's cost
    assert '<span class="badge failed">Failed</span>' in page.text
    assert 'id="cancel-batch"' in page.text
    assert f'name="csrf" value="{csrf_token(ALICE_TOKEN)}"' in page.text


def test_batch_page_breaks_its_cost_down_by_resource(client: TestClient) -> None:
    """The cost panel: each Hail resource of the API's cost_breakdown, its cost and share; the batch still
    runs, so the total is 'so far'. A job page has its own."""
    sign_in(client)
    page = client.get("/ui/batches/1")
    panel = page.text[page.text.index('id="cost-breakdown"'):]
    panel = panel[:panel.index("</section>")]
    assert '<small id="cost-total">$0.0123 so far</small>' in panel
    rows = re.findall(r'<tr data-resource="([^"]+)">\s*<td><code>[^<]+</code></td><td>([^<]+)</td>'
                      r'<td class="num">([^<]+)</td>', panel)
    assert rows == [("compute/n1-preemptible/1", "CPU, preemptible", "$0.0061"),
                    ("disk/local-ssd/preemptible/1", "Storage, preemptible", "$0.0001"),
                    ("memory/n1-preemptible/1", "Memory, preemptible", "$0.0021"),
                    ("service-fee/1", "Service fee", "$0.0040")]
    assert 'value="0.49593495934959353"' in panel  # compute's share of the total, as a <meter>
    assert "up to their workers' latest billing report" in panel
    job = client.get("/ui/batches/1/jobs/1").text
    assert '<small id="cost-total">$0.0100</small>' in job and 'data-resource="service-fee/1"' in job
    running = client.get("/ui/batches/1/jobs/2").text
    assert '<small id="cost-total">$0.0023 so far</small>' in running
    nothing = client.get("/ui/batches/1/jobs/3").text  # Ready: nothing billed
    assert "Nothing billed yet" in nothing


def test_batch_jobs_filter(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1", params={"q": "state = bad"})
    assert 'data-job-id="4"' in page.text and 'data-job-id="1"' not in page.text
    assert "query help" in page.text and "instance_collection" in page.text
    slow = client.get("/ui/batches/1", params={"q": "duration >= 60\ninstance = w-1"})
    assert 'data-job-id="1"' in slow.text and 'data-job-id="4"' not in slow.text
    live = client.get("/ui/batches/1", params={"q": "state = live"})
    assert 'data-job-id="2"' in live.text and 'data-job-id="3"' in live.text and 'data-job-id="1"' not in live.text


def test_another_users_batch_is_not_found(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/ui/batches/3").status_code == 404
    assert client.get("/ui/batches/3/jobs/1").status_code == 404
    assert client.get("/ui/batches/4").status_code == 404  # deleted


def test_a_complete_batch_has_no_cancel_button(client: TestClient) -> None:
    sign_in(client)
    assert 'id="cancel-batch"' not in client.get("/ui/batches/2").text


# --- cancel -------------------------------------------------------------------------------------

def test_cancel_calls_the_api_with_the_users_token(client: TestClient, api: RecordingTransport) -> None:
    sign_in(client)
    answer = client.post("/ui/batches/1/cancel", data={"csrf": csrf_token(ALICE_TOKEN)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/batches/1?cancel=requested"
    assert api.requests == [("PATCH", "/api/v1alpha/batches/1/cancel", f"Bearer {ALICE_TOKEN}")]
    assert "Cancel requested." in client.get(answer.headers["location"]).text


def test_cancel_without_the_form_token_is_refused(client: TestClient, api: RecordingTransport) -> None:
    sign_in(client)
    assert client.post("/ui/batches/1/cancel", data={"csrf": "forged"}).status_code == 403
    assert client.post("/ui/batches/1/cancel").status_code == 403
    assert api.requests == []


def test_an_oversized_form_is_refused(client: TestClient, api: RecordingTransport) -> None:
    sign_in(client)
    answer = client.post("/ui/batches/1/cancel", content=b"csrf=" + b"x" * 20_000,
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    assert api.requests == []


def test_cancel_of_another_users_batch_is_not_found(client: TestClient, api: RecordingTransport) -> None:
    sign_in(client)
    assert client.post("/ui/batches/3/cancel", data={"csrf": csrf_token(ALICE_TOKEN)}).status_code == 404
    assert api.requests == []


def test_rerun_failed_calls_the_api_with_the_users_token(client: TestClient, api: RecordingTransport) -> None:
    sign_in(client)
    assert 'id="rerun-failed"' in client.get("/ui/batches/1").text       # job 4 failed
    assert 'id="rerun-failed"' not in client.get("/ui/batches/2").text   # nothing to re-run
    assert client.post("/ui/batches/1/rerun-failed", data={"csrf": "forged"}).status_code == 403
    assert client.post("/ui/batches/3/rerun-failed", data={"csrf": csrf_token(ALICE_TOKEN)}).status_code == 404
    assert api.requests == []
    api.status = 400
    answer = client.post("/ui/batches/1/rerun-failed", data={"csrf": csrf_token(ALICE_TOKEN)})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/batches/1?rerun=failed")
    assert api.requests == [("POST", "/api/v1alpha/batches/1/rerun-failed", f"Bearer {ALICE_TOKEN}")]
    assert 'id="rerun-outcome"' in client.get(answer.headers["location"]).text


def test_an_api_refusal_is_shown(client: TestClient, api: RecordingTransport) -> None:
    api.status = 400
    sign_in(client)
    answer = client.post("/ui/batches/1/cancel", data={"csrf": csrf_token(ALICE_TOKEN)})
    assert answer.headers["location"].startswith("/ui/batches/1?cancel=failed")


# --- a job --------------------------------------------------------------------------------------

def test_job_page_shows_attempts_steps_logs_usage_and_audit(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1/jobs/1")
    assert page.status_code == 200
    text = page.text
    assert "a-1a" in text and "instance_lost" in text and "a-1b" in text
    assert '<tr class="chosen">' in text                            # the current attempt is selected
    assert 'id="steps"' in text and "running 1m 30s" in text         # main's timing, as the projection stores it
    assert "aligning reads..." in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in text  # a log never becomes markup
    assert "<script>alert" not in text
    assert text.count('<svg class="chart"') == 2                     # cpu and memory of main
    assert "<polyline" in text
    assert "JobAttemptScheduled" in text and "squall.batch/0@5" in text
    assert '"image": "ubuntu:24.04"' in text                        # the spec, pretty-printed
    assert 'data-live-url' not in text                               # a finished job is not polled


def test_job_page_for_an_earlier_attempt(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1/jobs/1", params={"attempt_id": "a-1a"})
    assert "No logs for this attempt." in page.text
    assert 'id="steps"' not in page.text  # the job's status belongs to its current attempt, a-1b


def test_a_ready_job_explains_why_it_is_not_scheduled(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1/jobs/3")
    assert 'id="why-not-scheduled"' in page.text
    assert "over_fair_share" in page.text and "fair share of 2 cores" in page.text
    assert "Not scheduled yet." in page.text


def test_a_running_job_follows_its_log(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1/jobs/2")
    assert 'data-live-url="/ui/batches/1/jobs/2/log/main?attempt_id=a-2&amp;tail=262144"' in page.text
    log = client.get("/ui/batches/1/jobs/2/log/main", params={"attempt_id": "a-2"})
    assert log.status_code == 200
    assert log.text == "step 1 of 3\n"
    assert log.headers["x-squall-job-state"] == "Running"
    assert log.headers["cache-control"] == "no-store"
    tail = client.get("/ui/batches/1/jobs/2/log/main", params={"attempt_id": "a-2", "tail": 7})
    assert tail.text == "1 of 3\n" and tail.headers["x-squall-log-truncated"] == "true"


def test_raw_logs_only_for_known_steps_and_attempts(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/ui/batches/1/jobs/1/log/main").text.startswith("aligning reads")
    assert client.get("/ui/batches/1/jobs/1/log/nope").status_code == 404
    assert client.get("/ui/batches/1/jobs/1/log/main", params={"attempt_id": "../../2"}).status_code == 404
    assert client.get("/ui/batches/1/jobs/1/log/input").status_code == 404  # the step wrote no log
    assert client.get("/ui/batches/1/jobs/3/log/main").status_code == 404  # no attempt yet


def test_a_missing_job_is_not_found(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/ui/batches/1/jobs/99").status_code == 404


# --- instances ----------------------------------------------------------------------------------

def test_instances_and_pool_utilisation(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/instances")
    assert page.status_code == 200
    # w-1 runs job 2's attempt (2 of 4 cores): 50%; the pool has 2 of 8 active cores in use: 25%
    assert "50%" in page.text and "25%" in page.text
    assert "w-1" in page.text and "w-2" in page.text and "w-3" not in page.text
    assert "2 active, 1 deleted" not in page.text and "2 active" in page.text
    assert "w-3" in client.get("/ui/instances", params={"deleted": "1"}).text


def test_only_operators_see_the_fleet(client: TestClient) -> None:
    sign_in(client, BOB_TOKEN)
    page = client.get("/ui/instances")
    assert page.status_code == 403
    assert "squall user create bob --operator" in page.text and "w-1" not in page.text
    assert 'id="signed-in-user">bob<' in page.text, "still a signed-in page, with its header"
    assert "/ui/instances" not in client.get("/ui/batches").text, "no link to a page bob may not see"
    sign_in(client, ALICE_TOKEN)
    assert 'href="/ui/instances"' in client.get("/ui/batches").text


def test_every_signed_in_page_shows_who_is_signed_in(client: TestClient) -> None:
    sign_in(client, BOB_TOKEN)
    for path in ("/ui/batches", "/ui/batches/3", "/ui/batches/3/jobs/1"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert '<span class="who" id="signed-in-user">bob</span>' in page.text, path


# --- job groups ---------------------------------------------------------------------------------

def test_the_batch_page_nests_jobs_under_their_job_groups(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1").text
    tree = page[page.index('id="job-groups"'):page.index("<h2>Jobs")]
    # align holds stage-1 and stage-2, each with its own job and Hail's counts (descendants included)
    assert tree.index('data-group-id="1"') < tree.index('data-group-id="2"') < tree.index('data-group-id="3"')
    align = tree[tree.index('data-group-id="1"'):tree.index('data-group-id="2"')]
    assert "align" in align and "2 jobs" in align and "1 ready" in align and "1 failed" in align
    assert 'data-state="failure"' in align
    stage_2 = tree[tree.index('data-group-id="3"'):]
    assert "stage-2" in stage_2 and 'data-group-job-id="4"' in stage_2 and "exit 1" in stage_2
    assert 'data-group-job-id="1"' not in tree, "root jobs are listed with the batch's jobs"
    assert 'href="/ui/batches/1/job-groups/3"' in tree


def test_a_job_group_page_shows_where_it_sits_its_sub_groups_and_its_own_jobs(client: TestClient) -> None:
    sign_in(client)
    align = client.get("/ui/batches/1/job-groups/1")
    assert align.status_code == 200
    assert 'href="/ui/batches/1">Batch 1</a>' in align.text and ">align <small>" in align.text
    assert 'data-group-id="2"' in align.text and 'data-group-id="3"' in align.text
    assert "No jobs directly in this group" in align.text  # its jobs are in its stages
    stage = client.get("/ui/batches/1/job-groups/3").text
    start = stage.index('id="crumbs"')
    crumbs = stage[start:stage.index("</nav>", start)]
    assert 'href="/ui/batches/1/job-groups/1">align</a>' in crumbs and "stage-2" in crumbs
    assert 'data-job-id="4"' in stage and 'data-job-id="3"' not in stage
    filtered = client.get("/ui/batches/1/job-groups/2", params={"q": "state = bad"}).text
    assert 'data-job-id="3"' not in filtered and "match this query" in filtered


def test_a_job_group_page_breaks_its_cost_down_by_resource(client: TestClient) -> None:
    """Each group has the cost panel of its own jobs and its sub-groups' (the read model's job_groups row);
    the root group is the whole batch."""
    sign_in(client)
    root = client.get("/ui/batches/1/job-groups/0").text
    panel = root[root.index('id="cost-breakdown"'):]
    panel = panel[:panel.index("</section>")]
    assert '<small id="cost-total">$0.0123 so far</small>' in panel
    assert re.findall(r'data-resource="([^"]+)"', panel) == sorted(BATCH_1_BREAKDOWN)
    assert "Core time 1m 30s." in panel
    stage = client.get("/ui/batches/1/job-groups/3").text  # its one job failed before it was billed
    assert '<small id="cost-total">$0.0000</small>' in stage and "Nothing billed yet: a job group" in stage


def test_job_groups_of_missing_or_foreign_batches_are_not_found(client: TestClient) -> None:
    sign_in(client)
    assert client.get("/ui/batches/1/job-groups/99").status_code == 404
    assert client.get("/ui/batches/3/job-groups/0").status_code == 404  # bob's batch


# --- pools --------------------------------------------------------------------------------------

def test_the_pools_page_shows_the_autoscalers_last_decision_and_why(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/instances").text
    start = page.index('data-pool="standard"')
    row = page[start:page.index("</tr>", page.index('data-pool-decision="standard"'))]  # the pool and its decision
    assert "1 / 2 / 3" in row and "max_live_instances" in row  # limits, and the one that held it back
    assert "12 / 12" in row  # look-ahead demand / ready cores
    assert "local-a 0.67" in row and "local-b 0.33" in row  # zone weights from recent creations
    assert "the pool is at max_live_instances (2 pending or active)" in row
    assert '<td class="standing">1' in row  # w-2
    assert "standing</small>" in page and "local-b" in page


def test_a_pools_history_is_its_decisions_newest_first(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/pools/standard")
    assert page.status_code == 200
    table = page.text[page.text.index('id="decisions"'):]
    assert table.index("max_live_instances") < table.index("to keep min_instances 1")
    assert "w-2 in local-a (standing)" in table and "instance-events[1]@1" in table
    assert "alice: 3 of 45000 jobs" in page.text
    assert client.get("/ui/pools/nope").status_code == 404
    sign_in(client, BOB_TOKEN)
    assert client.get("/ui/pools/standard").status_code == 403


def test_a_ready_jobs_page_says_what_the_autoscaler_decided_for_its_pool(client: TestClient) -> None:
    sign_in(client)
    page = client.get("/ui/batches/1/jobs/3").text  # Ready, pool standard (preemptible)
    why = page[page.index('id="why-autoscaler"'):]
    assert "the pool is at max_live_instances (2 pending or active)" in why
    assert 'href="/ui/pools/standard"' in why


# --- security headers ----------------------------------------------------------------------------

def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    sign_in(client)
    for path in ("/ui/login", "/ui/batches", "/ui/batches/1/jobs/2/log/main", "/ui/batches/999", "/ui/static/ui.css",
                 "/ui/batches?last_batch_id=x"):
        headers = client.get(path).headers
        csp = headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert headers.get("x-frame-options") == "DENY", path
