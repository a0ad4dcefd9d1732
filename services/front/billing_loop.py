"""The billing-limit loop: every 10 s, cancel the running batches of projects over their limit.

Hail runs this in its batch driver ("Another loop runs every 10 s and cancels every running batch
whose billing project has reached its limit"). In squall it runs as a background task of the front
end's lifespan (services/front/__main__.py), for three reasons:

- a cancel is a front-end write: it marks the batch cancelled in the front's own tables (so no
  update or commit slips in afterwards) and appends BatchCancelRequested. The loop calls exactly
  the path PATCH /batches/{id}/cancel takes (`Submissions.cancel`), with reason "billing limit";
- everything it reads is already in the front's database: the limits (front_billing_projects) and
  the read model's batches (cost, state) that the API serves;
- no new process for `squall up` to supervise.

Several front replicas each run it, and that is harmless: the event id of a batch's
BatchCancelRequested is derived from the batch id alone (services/front/update_plan.py), so every replica
(and every pass, until the read model shows the batch cancelled) appends the same event, which
consumers recognise as one; and a cancelled batch cancels nothing more (the resolver folds a repeated
cancel as one).
A pass that crashes between marking and appending is repaired by the next pass, because the loop
selects from the read model, which only shows a batch cancelled once the event is in the log.

"Running" is Hail's: a committed batch not yet complete (read-model state 'running'), neither
cancelled nor deleted. Accrued cost includes running attempts up to their workers' latest billing
report (services/front/billing.py), so the loop stops a project while its jobs still run, within
one billing interval of it reaching its limit plus one loop interval (`--billing-loop-interval`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from psycopg_pool import AsyncConnectionPool

from services.front.billing import projects_over_limit, usd
from services.front.errors import NotFound
from services.front.submission import Submissions

log = logging.getLogger("squall.front.billing")

BILLING_LIMIT_REASON: Final = "billing limit"
INTERVAL_S: Final = 10.0


async def cancel_over_limit_batches(pool: AsyncConnectionPool, submissions: Submissions) -> list[int]:
    """One pass: request cancellation of every running batch of every project over its limit.

    Returns the batch ids it asked to cancel (those whose request is not yet in the read model).
    """
    async with pool.connection() as conn:
        over = await projects_over_limit(conn)
        if not over:
            return []
        cur = await conn.execute(
            'SELECT batch_id, "user", billing_project FROM batches WHERE billing_project = ANY(%s) '
            "AND state = 'running' AND NOT cancelled AND NOT deleted ORDER BY batch_id",
            ([p.billing_project for p in over],))
        running = await cur.fetchall()
    limits = {p.billing_project: p for p in over}
    cancelled = []
    for batch_id, user, project in running:
        try:
            await submissions.cancel(user, batch_id, reason=BILLING_LIMIT_REASON)
        except NotFound:
            continue  # deleted since the read model last saw it: its delete already cancelled it
        cost = limits[project]
        log.info("cancelled batch %s of billing project %s: accrued cost %s reached its limit %s",
                 batch_id, project, usd(cost.accrued_cost), usd(cost.limit))
        cancelled.append(batch_id)
    return cancelled


async def run_billing_limit_loop(pool: AsyncConnectionPool, submissions: Submissions, *,
                                 interval_s: float = INTERVAL_S, stop: asyncio.Event | None = None) -> None:
    """Run a pass every `interval_s` until `stop` is set (or the task is cancelled).

    A pass that fails (database or log unavailable) is logged and retried at the next tick: the
    loop never takes the front end down.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await cancel_over_limit_batches(pool, submissions)
        except Exception as exc:  # database or log down, or a bug: the next tick tries again
            log.warning("billing-limit pass failed, retrying in %.0f s: %s", interval_s, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
