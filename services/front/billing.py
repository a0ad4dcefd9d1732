"""Billing projects' limits and accrued cost, as Hail has them.

A project's `limit` (USD, NULL = none) is the front's own truth (`front_billing_projects.limit_usd`,
migration 003). Its `accrued_cost` is the sum of the read model's `batches.cost` over every batch
of the project, deleted ones included (their cost was spent all the same).

Running attempts count: every billing interval (60 s by default, Hail's) each worker reports the
attempts it runs and the read model bills them up to then (projections/readmodel/ledger.py), and
bills each attempt start to end when it ends. So accrued cost trails what the project's running
attempts have used by at most one billing interval (plus the projector's lag). Once accrued cost
reaches the limit, new batches and updates in the project get 403 (`check_under_limit`) and the
billing-limit loop (services/front/billing_loop.py) cancels its running batches: the project
overshoots by at most what its running attempts cost in one billing interval, one loop interval
and the time their kill takes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from services.front.errors import Forbidden, InvalidRequest, NotFound

# accrued cost per project: the read model's batches (projections/migrations/001_readmodel.sql)
_ACCRUED = "(SELECT coalesce(sum(b.cost), 0) FROM batches b WHERE b.billing_project = p.name)"


@dataclass(frozen=True, slots=True)
class ProjectCost:
    billing_project: str
    limit: float | None
    accrued_cost: float

    @property
    def over_limit(self) -> bool:
        """Hail's test: the limit is reached once accrued cost is at least the limit."""
        return self.limit is not None and self.accrued_cost >= self.limit


def parse_limit(value: Any, field: str = "limit") -> float | None:
    """A limit in USD: a non-negative finite number, or None (no limit).

    Accepts numbers and numeric strings (Hail's server takes `float(limit)`); the strings
    "none"/"null" (any case) or "" mean no limit, so a CLI can clear it.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in ("", "none", "null"):
            return None
        try:
            number = float(value)
        except ValueError:
            raise InvalidRequest(field, f"{value!r} is not a number of USD (or 'none' to remove the limit)") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise InvalidRequest(field, f"{value!r} is not a number of USD (or null to remove the limit)")
    if not math.isfinite(number) or number < 0:
        raise InvalidRequest(field, f"{value!r} is not a valid limit: it must be a finite number of USD >= 0")
    return number


async def set_limit(conn: Any, billing_project: str, limit: float | None) -> None:
    """Set (or with None, remove) the project's limit; NotFound for an unknown project."""
    cur = await conn.execute("UPDATE front_billing_projects SET limit_usd = %s WHERE name = %s",
                             (limit, billing_project))
    if cur.rowcount == 0:
        raise NotFound(f"billing project {billing_project!r} does not exist")


async def project_cost(conn: Any, billing_project: str) -> ProjectCost | None:
    cur = await conn.execute(f"SELECT p.name, p.limit_usd, {_ACCRUED} FROM front_billing_projects p "
                             "WHERE p.name = %s", (billing_project,))
    row = await cur.fetchone()
    return None if row is None else ProjectCost(row[0], row[1], float(row[2]))


async def projects_over_limit(conn: Any) -> list[ProjectCost]:
    """Every project with a limit whose accrued cost has reached it."""
    cur = await conn.execute(
        f"SELECT name, limit_usd, accrued FROM (SELECT p.name, p.limit_usd, {_ACCRUED} AS accrued "
        "FROM front_billing_projects p WHERE p.limit_usd IS NOT NULL) t WHERE accrued >= limit_usd ORDER BY name")
    return [ProjectCost(name, limit, float(accrued)) for name, limit, accrued in await cur.fetchall()]


async def check_under_limit(conn: Any, billing_project: str) -> None:
    """403 naming the project, its limit and accrued cost once the limit is reached (Hail's check)."""
    cost = await project_cost(conn, billing_project)
    if cost is not None and cost.over_limit:
        raise Forbidden(f"billing project {billing_project!r} has exceeded its budget: accrued cost "
                        f"{usd(cost.accrued_cost)} >= limit {usd(cost.limit)}; no new batches or updates are "
                        "accepted in it until an operator raises the limit "
                        f"(squall billing-project set-limit {billing_project} AMOUNT)")


async def billing_projects(conn: Any, user: str | None, billing_project: str | None = None) -> list[dict[str, Any]]:
    """Hail's billing-project shape: `{billing_project, users, status, limit, accrued_cost}`.

    `user` limits the answer to the projects the user is a member of (None: every project, as
    Hail shows developers); `billing_project` to that one project.
    """
    where, params = ["true"], []
    if user is not None:
        where.append("EXISTS (SELECT 1 FROM front_billing_project_members m "
                     "WHERE m.billing_project = p.name AND m.user_name = %s)")
        params.append(user)
    if billing_project is not None:
        where.append("p.name = %s")
        params.append(billing_project)
    cur = await conn.execute(
        "SELECT p.name, p.limit_usd, {accrued}, "
        "coalesce((SELECT array_agg(m.user_name ORDER BY m.user_name) FROM front_billing_project_members m "
        "          WHERE m.billing_project = p.name), '{{}}') "
        "FROM front_billing_projects p WHERE {where} ORDER BY p.name".format(
            accrued=_ACCRUED, where=" AND ".join(where)), params)
    return [{"billing_project": name, "users": list(users), "status": "open", "limit": limit,
             "accrued_cost": float(accrued)} for name, limit, accrued, users in await cur.fetchall()]


def usd(amount: float | None) -> str:
    return "none" if amount is None else f"${amount:.4f}"
