"""Security headers on every response of the UI.

The UI's pages load their script and stylesheet from /ui/static only and have no inline script or
style (the only script, static/ui.js, is a file; utilisation is a <meter>, not a styled span), so
the Content-Security-Policy can allow 'self' and nothing else: a value a user got onto a page
(a job name, a log line) cannot run script even if escaping were ever missed. `frame-ancestors
'none'` (and X-Frame-Options for older browsers) keeps other sites from framing the cancel button;
`nosniff` keeps a browser from running a log served as text.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """ASGI middleware adding HEADERS to every HTTP response (replacing any the app set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                message["headers"] = [h for h in message.get("headers", []) if h[0].lower() not in names] + HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)
