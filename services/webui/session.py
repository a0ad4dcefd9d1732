"""The UI's sign-in session: the user's API token in an HttpOnly cookie, and a CSRF token derived from it.

The cookie holds the same bearer token the API takes (the UI forwards it on the user's behalf, e.g.
to cancel), so the browser's scripts never see it (HttpOnly) and other sites never send it
(SameSite=Strict). State-changing forms also carry a CSRF field derived from the token, so a
request must come from a page this UI rendered for that user.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

COOKIE_NAME = "squall_ui_token"
COOKIE_MAX_AGE_S = 7 * 24 * 3600


def cookie_path(request: Request) -> str:
    """The UI's own mount point ("/ui/"), so the cookie is not sent to the rest of the site."""
    return request.scope.get("root_path", "").rstrip("/") + "/"


def token_from(request: Request) -> str | None:
    return request.cookies.get(COOKIE_NAME) or None


def set_token_cookie(response: Response, request: Request, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE_NAME, token, max_age=COOKIE_MAX_AGE_S, path=cookie_path(request),
                        httponly=True, samesite="strict", secure=secure)


def clear_token_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE_NAME, path=cookie_path(request), httponly=True, samesite="strict")


def csrf_token(token: str) -> str:
    """Stable per sign-in, useless without the cookie, and not the token itself."""
    return hmac.new(token.encode(), b"squall-ui-csrf", hashlib.sha256).hexdigest()


def csrf_ok(token: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(token), submitted)


def safe_next(target: str | None, default: str) -> str:
    """Where to go after signing in: only a path on this site, never another host (open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target
