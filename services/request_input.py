"""What the API and the UI accept in a URL, checked once before any route sees it, and the one
parser for integer and text parameters.

Hail's client retries every 5xx forever, so a URL no handler can use must be a 4xx, never an
exception deeper down: PostgreSQL refuses NUL in text, `int()` refuses the unicode digits that
`str.isdigit()` accepts, and percent-encoded bytes that are not UTF-8 (a lone surrogate among
them) are not text at all. `InputGuard` answers those with 400 (and an over-long URL with 414)
for every route, present and future, of the app it wraps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_PATH_BYTES = 2048
MAX_QUERY_BYTES = 16 * 1024
_ASCII_DIGITS = re.compile(r"[0-9]+")


class BadInput(ValueError):
    """A parameter no handler can use; `status` is the 4xx to answer, `message` says what to fix."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def check_text(name: str, value: str) -> str:
    """`value` if it is text PostgreSQL can store: no NUL, no lone surrogate."""
    if "\x00" in value:
        raise BadInput(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{name} is not valid UTF-8 text (it holds a lone surrogate)") from None
    return value


def parse_int(name: str, raw: str, *, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    """An integer parameter: ASCII digits only (not '²' or '١', which `str.isdigit()` accepts), in range."""
    if not _ASCII_DIGITS.fullmatch(raw) or len(raw) > len(str(maximum)) or not minimum <= int(raw) <= maximum:
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise BadInput(f"{name} must be a whole number from {minimum} to {maximum}, not {shown!r}")
    return int(raw)


@dataclass(frozen=True, slots=True)
class IntParam:
    minimum: int = 0
    maximum: int = 2**63 - 1

    def parse(self, name: str, raw: str) -> int | None:
        return None if raw == "" else parse_int(name, raw, minimum=self.minimum, maximum=self.maximum)


@dataclass(frozen=True, slots=True)
class TextParam:
    max_len: int = 4096

    def parse(self, name: str, raw: str) -> str:
        if len(raw) > self.max_len:
            raise BadInput(f"{name} must be at most {self.max_len} characters")
        return check_text(name, raw)


Param = IntParam | TextParam


def check_url(raw_path: bytes, query_string: bytes) -> BadInput | None:
    """Why this request target is unusable, or None. `raw_path` is percent-encoded, without the query."""
    if len(raw_path) > MAX_PATH_BYTES:
        return BadInput(f"the path is longer than {MAX_PATH_BYTES} bytes", status=414)
    if len(query_string) > MAX_QUERY_BYTES:
        return BadInput(f"the query string is longer than {MAX_QUERY_BYTES} bytes", status=414)
    problem = _bad_text("the path", unquote_to_bytes(raw_path))
    if problem:
        return problem
    for pair in query_string.split(b"&"):
        for i, part in enumerate(pair.split(b"=", 1)):
            name = "a query parameter name" if i == 0 else f"query parameter {_shown(pair.split(b'=', 1)[0])}"
            problem = _bad_text(name, unquote_to_bytes(part.replace(b"+", b" ")))
            if problem:
                return problem
    return None


def _bad_text(name: str, data: bytes) -> BadInput | None:
    try:
        text = data.decode("utf-8")  # strict: an encoded lone surrogate (ED A0 80) is refused too
    except UnicodeDecodeError:
        return BadInput(f"{name} is not valid UTF-8 once percent-decoded")
    if "\x00" in text:
        return BadInput(f"{name} must not contain NUL characters (%00)")
    return None


def _shown(name: bytes) -> str:
    return repr(unquote_to_bytes(name[:40]).decode("utf-8", errors="replace"))


class InputGuard:
    """ASGI middleware: answer a request whose URL no handler can use with a JSON `{"message"}` 4xx."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _problem(scope)
            if problem is not None:
                body = json.dumps({"message": problem.message}).encode()
                await send({"type": "http.response.start", "status": problem.status,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _problem(scope: Scope) -> BadInput | None:
    raw_path = scope.get("raw_path")
    if raw_path is None:
        try:
            raw_path = scope["path"].encode("utf-8")
        except UnicodeEncodeError:
            return BadInput("the path is not valid UTF-8 text (it holds a lone surrogate)")
    # the ASGI spec keeps the query out of raw_path, but some clients (httpx's ASGI transport) leave it in
    raw_path = raw_path.split(b"?", 1)[0]
    problem = check_url(raw_path, scope.get("query_string", b""))
    if problem is None and "\x00" in scope.get("path", ""):  # a server that decoded the path itself
        problem = BadInput("the path must not contain NUL characters (%00)")
    return problem
