"""The two query languages behind one door: `q` text and a version -> a SQL Condition, or a 400.

Version 1 is Hail's legacy language (services.front.query, `/api/v1alpha`), version 2 its current
one (services.front.query_v2, `/api/v2alpha` and the web UI, as in Hail's UI).
"""

from __future__ import annotations

from typing import Final

from services.front import query, query_v2, query_v2_sql
from services.front.errors import InvalidRequest
from services.front.query import Condition

CURRENT_QUERY_VERSION: Final = 2
VERSIONS: Final = (1, 2)


def default_batches_query(user: str, version: int) -> str:
    """Hail's default listing: the caller's own batches."""
    return f"user = {user}" if version == 2 else f"user:{user}"


def batch_condition(q: str, version: int) -> Condition:
    if version == 1:
        return query.batch_condition(q)
    try:
        return query_v2_sql.batch_condition(query_v2.parse(q, "batches"))
    except query_v2.QueryError as exc:
        raise InvalidRequest("q", exc.message) from None


def job_condition(q: str, version: int) -> Condition:
    if version == 1:
        return query.job_condition(q)
    try:
        return query_v2_sql.job_condition(query_v2.parse(q, "jobs"))
    except query_v2.QueryError as exc:
        raise InvalidRequest("q", exc.message) from None

