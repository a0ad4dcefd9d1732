"""Actions reach the API on this server's own address, or the absolute base configured."""

from __future__ import annotations

from starlette.requests import Request

from services.webui.app import api_url


def test_the_api_is_called_on_this_servers_own_address_not_the_host_header() -> None:
    scope = {"type": "http", "scheme": "http", "server": ("10.0.0.5", 8000), "path": "/ui/batches/1/cancel",
             "headers": [(b"host", b"evil.example")], "query_string": b""}
    request = Request(scope)
    assert api_url(request, "/api/v1alpha", "/batches/1/cancel") == "http://10.0.0.5:8000/api/v1alpha/batches/1/cancel"
    assert api_url(request, "https://front.internal/api/v1alpha/", "/x") == "https://front.internal/api/v1alpha/x"
    v6 = Request({**scope, "server": ("::1", 8000)})
    assert api_url(v6, "/api/v1alpha", "/x") == "http://[::1]:8000/api/v1alpha/x"


def test_an_in_process_server_has_no_port() -> None:
    request = Request({"type": "http", "scheme": "http", "server": ("front", None), "path": "/", "headers": [],
                       "query_string": b""})
    assert api_url(request, "/api/v1alpha", "/x") == "http://front/api/v1alpha/x"
