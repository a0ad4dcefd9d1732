"""The UI's pages, one handler each: batches, a batch, a job group, a job (and its raw log), instances
and pools.

Handlers take a `Visit` (the signed-in user, a read-model connection, the request) and return a
rendered template; they only read. A batch that is not the user's is a 404, as in the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response

from services.front.errors import InvalidRequest
from services.front.why import autoscaler_context, job_pool
from services.jobdata import locate
from services.webui import blobs, job_groups, pools, present, readmodels
from services.webui.charts import line_chart
from services.webui.steps import steps_from_status

if TYPE_CHECKING:
    from services.webui.app import Visit

# The raw-log route serves at most this much (the end of the log): it is read into memory.
RAW_LOG_MAX_BYTES = 8 * 1024 * 1024


async def batches(visit: Visit) -> Response:
    q = visit.query["q"] or ""
    last_batch_id = visit.query["last_batch_id"]
    try:
        rows, next_after = await readmodels.list_batches(visit.conn, visit.user, q, last_batch_id,
                                                             visit.ui.page_size, visit.ui.query_version)
        error = None
    except InvalidRequest as exc:
        rows, next_after, error = [], None, str(exc)
    for row in rows:
        row["api_state"] = present.batch_state(row)
    return visit.render("batches.html", status_code=400 if error else 200, batches=rows, q=q,
                        next_after=next_after, query_error=error, paged=last_batch_id is not None)


async def _users_batch(visit: Visit) -> dict:
    batch_id = visit.request.path_params["batch_id"]
    batch = await readmodels.get_batch(visit.conn, visit.user, batch_id)
    if batch is None:
        raise HTTPException(404, f"batch {batch_id} not found")
    batch["api_state"] = present.batch_state(batch)
    return batch


async def batch(visit: Visit) -> Response:
    row = await _users_batch(visit)
    q = visit.query["q"] or ""
    last_job_id = visit.query["last_job_id"]
    try:
        jobs, next_after = await readmodels.list_jobs(visit.conn, row["batch_id"], q, last_job_id,
                                                        visit.ui.page_size, visit.ui.query_version)
        error = None
    except InvalidRequest as exc:
        jobs, next_after, error = [], None, str(exc)
    counts = await readmodels.job_state_counts(visit.conn, row["batch_id"])
    groups = await job_groups.group_tree(visit.conn, row["batch_id"])
    return visit.render("batch.html", status_code=400 if error else 200, batch=row, jobs=jobs, q=q,
                        next_after=next_after, query_error=error, state_counts=counts, groups=groups,
                        paged=last_job_id is not None,
                        cancel_outcome=visit.query["cancel"], rerun_outcome=visit.query["rerun"],
                        cancellable=row["state"] != "complete" and not row["cancelled"])


async def job_group(visit: Visit) -> Response:
    """One job group: where it sits (its ancestors), its counts, its sub-groups nested, and its own jobs
    (paged and searchable as on the batch page)."""
    row = await _users_batch(visit)
    group_id = visit.request.path_params["job_group_id"]
    node = await job_groups.group_tree(visit.conn, row["batch_id"], group_id)
    crumbs = await job_groups.ancestors(visit.conn, row["batch_id"], group_id)
    if node is None or crumbs is None:
        raise HTTPException(404, f"job group {row['batch_id']}/{group_id} not found")
    q = visit.query["q"] or ""
    last_job_id = visit.query["last_job_id"]
    try:
        jobs, next_after = await readmodels.list_jobs(visit.conn, row["batch_id"], q, last_job_id,
                                                        visit.ui.page_size, visit.ui.query_version,
                                                        job_group_id=group_id)
        error = None
    except InvalidRequest as exc:
        jobs, next_after, error = [], None, str(exc)
    return visit.render("job_group.html", status_code=400 if error else 200, batch=row, group=node, crumbs=crumbs,
                        jobs=jobs, q=q, next_after=next_after, query_error=error, paged=last_job_id is not None)


async def _users_job(visit: Visit) -> tuple[dict, dict]:
    row = await _users_batch(visit)
    job_id = visit.request.path_params["job_id"]
    job = await readmodels.get_job(visit.conn, row["batch_id"], job_id)
    if job is None:
        raise HTTPException(404, f"job {row['batch_id']}/{job_id} not found")
    return row, job


def _chosen_attempt(visit: Visit, job: dict, attempts: list[dict]) -> dict | None:
    """The attempt named by ?attempt_id=, else the job's current one, else the latest."""
    wanted = visit.query["attempt_id"] or job.get("current_attempt_id")
    for attempt in attempts:
        if attempt["attempt_id"] == wanted:
            return attempt
    return attempts[-1] if attempts else None


def _attempt_status(job: dict, attempt: dict | None) -> dict | None:
    """The worker status of the chosen attempt; the job's own status describes only its current attempt."""
    if attempt is None:
        return None
    if attempt.get("status"):
        return attempt["status"]
    return job.get("status") if attempt["attempt_id"] == job.get("current_attempt_id") else None


async def _usage_charts(visit: Visit, batch_id: int, job_id: int, attempt_id: str) -> list[dict[str, Any]]:
    """Per step with samples: cpu and memory charts, or the reason the samples could not be read."""
    charts: list[dict[str, Any]] = []
    for step in blobs.STEPS:
        try:
            samples = await blobs.read_resource_usage(visit.ui.job_data, batch_id, job_id, attempt_id, step)
        except blobs.UsageFormatError as exc:
            charts.append({"step": step, "error": str(exc)})
            continue
        if samples is None:
            continue
        times = [s.time_ms for s in samples]
        charts.append({"step": step, "error": None, "svgs": [
            line_chart(f"{step}: cpu (cores)", times, [s.cpu_cores for s in samples], lambda v: f"{v:.2f}"),
            line_chart(f"{step}: memory", times, [float(s.memory_bytes) for s in samples],
                       lambda v: present.size(int(v)), colour="#9c4221"),
        ]})
    return charts


async def job(visit: Visit) -> Response:
    row, job_row = await _users_job(visit)
    batch_id, job_id = row["batch_id"], job_row["job_id"]
    attempts = await readmodels.list_attempts(visit.conn, batch_id, job_id)
    attempt = _chosen_attempt(visit, job_row, attempts)
    logs = {}
    charts: list[dict] = []
    if attempt is not None:  # the store's client keeps its blocking calls off the event loop
        where = await locate(visit.conn, batch_id, job_id, attempt["attempt_id"])
        for step in blobs.STEPS:
            log = await blobs.read_log(visit.ui.job_data, batch_id, job_id, attempt["attempt_id"], step, where=where)
            if log is not None:
                logs[step] = log
        charts = await _usage_charts(visit, batch_id, job_id, attempt["attempt_id"])
    status = _attempt_status(job_row, attempt)
    explanation = autoscaler = None
    if job_row["state"] in ("Pending", "Ready"):
        explanation = await readmodels.scheduling_explanation(visit.conn, batch_id, job_id)
    pool_of_job = job_pool(job_row) if job_row["state"] == "Ready" else None
    if pool_of_job is not None:
        autoscaler = autoscaler_context(await pools.latest_decision(visit.conn, pool_of_job))
    return visit.render(
        "job.html", batch=row, job=job_row, attempts=attempts, attempt=attempt, logs=logs, charts=charts,
        steps=steps_from_status(status), audit=await readmodels.audit_trail(visit.conn, batch_id, job_id),
        explanation=explanation, autoscaler=autoscaler, live=job_row["state"] in present.LIVE_JOB_STATES,
        log_tail_bytes=blobs.LOG_TAIL_BYTES)


async def job_log(visit: Visit) -> Response:
    """The raw text of one step's log, for the live view: its last `?tail=` bytes, at most 8 MiB.

    Whole logs of any size are the API's business (GET /api/v1alpha/batches/{b}/jobs/{j}/log/{step}).
    """
    row, job_row = await _users_job(visit)
    step = visit.request.path_params["step"]
    if step not in blobs.STEPS:
        raise HTTPException(404, f"no step {step!r}: one of {', '.join(blobs.STEPS)}")
    attempts = await readmodels.list_attempts(visit.conn, row["batch_id"], job_row["job_id"])
    attempt = _chosen_attempt(visit, job_row, attempts)
    # Only a known attempt id reaches the blob path: the query string never names a file.
    if attempt is None or attempt["attempt_id"] != (visit.query["attempt_id"] or attempt["attempt_id"]):
        raise HTTPException(404, "no such attempt for this job")
    attempt_id = attempt["attempt_id"]
    tail = visit.query["tail"] or RAW_LOG_MAX_BYTES
    where = await locate(visit.conn, row["batch_id"], job_row["job_id"], attempt_id)
    log = await blobs.read_log(visit.ui.job_data, row["batch_id"], job_row["job_id"], attempt_id, step,
                               min(tail, RAW_LOG_MAX_BYTES), where=where)
    # The live view stops polling once the job's state is terminal.
    headers = {"X-Squall-Job-State": job_row["state"], "Cache-Control": "no-store",
               "X-Squall-Log-Truncated": "true" if log is not None and log.truncated else "false"}
    return PlainTextResponse("" if log is None else log.text, headers=headers,
                             status_code=200 if log is not None else 404)


async def instances(visit: Visit) -> Response:
    if not visit.operator:  # the fleet is shared: its names and load are the operators' business
        return visit.render("error.html", status_code=403, status=403,
                            message=f"Instances and pools are for operators; {visit.user} is not one. "
                                    "An operator can grant it: squall user create "
                                    f"{visit.user} --operator")
    show_deleted = visit.query["deleted"] == "1"
    rows = await readmodels.list_instances(visit.conn, include_deleted=show_deleted)
    overview = pools.pool_overview(readmodels.summarise_pools(rows), rows, await pools.latest_decisions(visit.conn))
    return visit.render("instances.html", instances=rows, pools=overview, show_deleted=show_deleted)


async def pool(visit: Visit) -> Response:
    """A pool's autoscaler decisions, newest first: what it asked for, deleted, and why."""
    if not visit.operator:
        return visit.render("error.html", status_code=403, status=403,
                            message=f"Pools are for operators; {visit.user} is not one.")
    name = visit.request.path_params["pool"]
    history = await pools.decision_history(visit.conn, name)
    instances = [i for i in await readmodels.list_instances(visit.conn) if i["pool"] == name]
    if not history and not instances:
        raise HTTPException(404, f"no pool {name!r}: the autoscaler has decided nothing about it and it has no instances")
    return visit.render("pool.html", pool=name, history=history, instances=instances)
