"""Sign-in helpers: redirects stay on this site; the CSRF token is tied to the signed-in token."""

from __future__ import annotations

import pytest

from services.webui.session import csrf_ok, csrf_token, safe_next


@pytest.mark.parametrize(("target", "expected"), [
    ("/ui/batches/3?q=bad", "/ui/batches/3?q=bad"),
    (None, "/ui/batches"),
    ("", "/ui/batches"),
    ("https://evil.example/", "/ui/batches"),
    ("//evil.example/", "/ui/batches"),
    ("javascript:alert(1)", "/ui/batches"),
    ("batches", "/ui/batches"),
])
def test_safe_next(target: str | None, expected: str) -> None:
    assert safe_next(target, "/ui/batches") == expected


def test_csrf_token_is_per_token_and_not_the_token() -> None:
    assert csrf_token("a") != csrf_token("b")
    assert "secret" not in csrf_token("secret")
    assert csrf_ok("a", csrf_token("a"))
    assert not csrf_ok("a", csrf_token("b"))
    assert not csrf_ok("a", None)

