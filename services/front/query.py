"""Hail's v1 query language (`q=`) for batch and job listings, compiled to SQL conditions.

Whitespace-separated terms, each ANDed; a leading `!` negates a term.
Batches: `k=v` (attribute), `has:k`, `user:X`, `billing_project:X`, and the words
`open closed complete running cancelled failure success`.
Jobs: `k=v` (attribute; `job_id=N` is the job id), `has:k`, and the state words
`pending ready creating running live cancelled error failed bad success done`.
Values are always bound parameters, never spliced into the SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.front.errors import InvalidRequest
from services.request_input import BadInput, parse_int


@dataclass
class Condition:
    """SQL text with %(name)s placeholders, and the values they bind."""

    sql: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str, negate: bool, **values: Any) -> None:
        names = {}
        for key, value in values.items():
            name = f"q{len(self.params)}"
            self.params[name] = value
            names[key] = f"%({name})s"
        clause = text.format(**names)
        self.sql.append(f"NOT ({clause})" if negate else f"({clause})")

    def where(self) -> str:
        return " AND ".join(self.sql) if self.sql else "TRUE"


# Batch columns in the listing query: f = front_batches, b = batches (read model, may be absent).
_BATCH_COMPLETE = "coalesce(b.n_completed, 0) >= f.n_committed_jobs"
_BATCH_CANCELLED = "(f.cancelled OR coalesce(b.cancelled, false) OR coalesce(b.n_cancelled, 0) > 0)"
_BATCH_WORDS = {
    "open": "FALSE",  # squall never has Hail's legacy 'open' batches
    "closed": "TRUE",
    "complete": _BATCH_COMPLETE,
    "running": f"NOT ({_BATCH_COMPLETE})",
    "cancelled": _BATCH_CANCELLED,
    "failure": "coalesce(b.n_failed, 0) > 0",
    "success": f"{_BATCH_COMPLETE} AND coalesce(b.n_failed, 0) = 0 AND NOT {_BATCH_CANCELLED}",
}

_JOB_STATE_WORDS = {
    "pending": ("Pending",),
    "ready": ("Ready",),
    "creating": ("Creating",),
    "running": ("Running",),
    "live": ("Ready", "Creating", "Running"),
    "cancelled": ("Cancelled",),
    "error": ("Error",),
    "failed": ("Failed",),
    "bad": ("Error", "Failed"),
    "success": ("Success",),
    "done": ("Cancelled", "Error", "Failed", "Success"),
}


def _terms(q: str) -> list[tuple[bool, str]]:
    out = []
    for term in q.split():
        negate = term.startswith("!")
        body = term[1:] if negate else term
        if not body:
            raise InvalidRequest("q", "'!' must be followed by a term")
        out.append((negate, body))
    return out


def batch_condition(q: str) -> Condition:
    cond = Condition()
    for negate, term in _terms(q):
        if "=" in term:
            key, value = term.split("=", 1)
            cond.add("f.attributes ->> {k} = {v}", negate, k=key, v=value)
        elif term.startswith("has:"):
            cond.add("f.attributes ? {k}", negate, k=term[4:])
        elif term.startswith("user:"):
            cond.add("f.user_name = {v}", negate, v=term[5:])
        elif term.startswith("billing_project:"):
            cond.add("f.billing_project = {v}", negate, v=term[len("billing_project:"):])
        elif term in _BATCH_WORDS:
            cond.add(_BATCH_WORDS[term], negate)
        else:
            raise InvalidRequest("q", f"unknown term {term!r}; use k=v, has:k, user:X, billing_project:X or one of "
                                      f"{', '.join(_BATCH_WORDS)}")
    return cond


def job_condition(q: str) -> Condition:
    cond = Condition()
    for negate, term in _terms(q):
        if "=" in term:
            key, value = term.split("=", 1)
            if key == "job_id":
                try:
                    job_id = parse_int("job_id", value, minimum=0, maximum=2**31 - 1)
                except BadInput as exc:
                    raise InvalidRequest("q", f"job_id={value!r}: {exc.message}") from None
                cond.add("j.job_id = {v}", negate, v=job_id)
            else:
                cond.add("j.attributes ->> {k} = {v}", negate, k=key, v=value)
        elif term.startswith("has:"):
            cond.add("j.attributes ? {k}", negate, k=term[4:])
        elif term in _JOB_STATE_WORDS:
            cond.add("j.state = ANY({s})", negate, s=list(_JOB_STATE_WORDS[term]))
        else:
            raise InvalidRequest("q", f"unknown term {term!r}; use k=v, job_id=N, has:k or one of "
                                      f"{', '.join(_JOB_STATE_WORDS)}")
    return cond
