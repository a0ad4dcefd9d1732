"""The front end's error tree. Domain code raises these; the app maps them to HTTP at the boundary.

Every message says what to fix: the Hail client retries 5xx forever, so bad input must always be
a 4xx with a reason a person can act on.
"""

from __future__ import annotations


class FrontError(Exception):
    """A request the front end refuses; `status` is the HTTP status it maps to."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(FrontError):
    """A malformed or unknown field (400). `field` is the path, e.g. 'bunch[3].resources.cpu'."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class Conflict(FrontError):
    """A well-formed request the batch's current state does not allow (400, as Hail answers)."""


class Unauthorized(FrontError):
    status = 401


class Forbidden(FrontError):
    status = 403


class NotFound(FrontError):
    status = 404


class PayloadTooLarge(FrontError):
    status = 413


class Unavailable(FrontError):
    """A dependency (log, database) failed; the client may retry (Hail's client does, on 503)."""

    status = 503
