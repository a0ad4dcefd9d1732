"""Small pieces of talking to the podman REST API: its error messages and timestamps, what its
list endpoint returns, and telling "the service did not answer" from "it answered an error"."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from podman.errors import APIError

from worker.runtime import ContainerInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time_ms(value: str | None) -> int | None:
    """podman's RFC 3339 timestamps (nanoseconds, zone offset) to epoch ms; None for the zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, dot, rest = value[:19], value[19:20], value[20:]
    digits = ""
    if dot == ".":
        digits = "".join(itertools.takewhile(str.isdigit, rest))
        zone = rest[len(digits):]
    else:
        zone = value[19:]
    zone = "+00:00" if zone in ("Z", "") else zone
    try:
        parsed = datetime.fromisoformat(f"{head}.{(digits + '000000')[:6]}{zone}")
    except ValueError:
        return None
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def unreachable(exc: BaseException) -> bool:
    """The service did not answer at all (no socket, refused), as opposed to answering an error."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError)):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def api_message(response: Any) -> str:
    """libpod's error message ({"cause", "message", "response"}), or the body as it is."""
    try:
        return str(response.json().get("message") or response.text).strip()
    except ValueError:
        return response.text.strip()


def is_not_running(exc: APIError) -> bool:
    text = f"{exc.explanation or ''} {exc}".lower()
    return (exc.response is not None and exc.response.status_code == 409) or "state improper" in text \
        or "can only kill running" in text


def info_from_list_entry(attrs: dict[str, Any]) -> ContainerInfo:
    """The list endpoint's shape (State is a string there, unlike inspect's object)."""
    state = attrs.get("State")
    status = state.get("Status") if isinstance(state, dict) else state
    names = attrs.get("Names") or [attrs.get("Name") or ""]
    return ContainerInfo(id=str(attrs.get("Id")), name=str(names[0]).lstrip("/"),
                         labels=dict(attrs.get("Labels") or {}), state=str(status or "unknown"))
