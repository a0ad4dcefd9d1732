"""A local HTTP server that answers like the Compute Engine API, enough for the GCE provider.

It serves insert / delete / list of instances and zone operations at the paths
google-cloud-compute uses (/compute/v1/projects/{p}/zones/{z}/...). Operations start RUNNING and
are DONE after `polls_until_done` GETs. Failures are scripted per zone:

- `exhausted_zones`: inserts there end in an operation error ZONE_RESOURCE_POOL_EXHAUSTED;
- `quota_exceeded`: inserts end in an operation error QUOTA_EXCEEDED;
- `fail_next_posts`: the next N POSTs answer HTTP 503 (a transient backend error).

`preempt(zone, name)` does what GCE does to a spot VM it reclaims with termination action DELETE: the
VM is gone, and a `compute.instances.preempted` operation records it (listed by zone operations).

Every request is recorded in `calls` so tests can assert what the provider sent.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from services.providers.gce_startup import WorkerBootstrap

_ZONE_PATH = re.compile(r"^/compute/v1/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/(?P<rest>.+)$")


# what every fake VM is told to install and trust (the provider refuses to create VMs without it)
BOOTSTRAP = WorkerBootstrap(wheel_url="gs://ctl/squall/releases/ab12/squall-0.1.0-py3-none-any.whl",
                            wheel_sha256="ab12", kafka_ca_pem="-----BEGIN CERTIFICATE-----\n...",
                            kafka_password_secret="projects/proj/secrets/squall-worker/versions/latest")


@dataclass
class Call:
    method: str
    zone: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any] | None


@dataclass
class FakeCompute:
    polls_until_done: int = 1
    exhausted_zones: set[str] = field(default_factory=set)
    quota_exceeded: bool = False
    fail_next_posts: int = 0
    calls: list[Call] = field(default_factory=list)
    instances: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (zone, name) -> body
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    _polls: dict[str, int] = field(default_factory=dict)
    _by_request_id: dict[str, str] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inserts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path == "instances"]

    def deletes(self) -> list[Call]:
        return [c for c in self.calls if c.method == "DELETE"]

    # ---- request handling (under the lock) ----------------------------------------------------

    def handle(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        parsed = urlparse(url)
        found = _ZONE_PATH.match(parsed.path)
        if found is None:
            return 404, _error(404, "notFound", f"no such path {parsed.path}")
        zone, rest = found["zone"], found["rest"]
        query = parse_qs(parsed.query)
        with self.lock:
            self.calls.append(Call(method, zone, rest, query, body))
            if method == "POST" and rest == "instances":
                return self._insert(zone, body or {}, query.get("requestId", [""])[0])
            if method == "GET" and rest == "instances":
                items = [i for (z, _), i in self.instances.items() if z == zone and _matches(i, query)]
                return 200, {"kind": "compute#instanceList", "items": items}
            if method == "DELETE" and rest.startswith("instances/"):
                return self._delete(zone, rest.split("/", 1)[1])
            if method == "GET" and rest.startswith("operations/"):
                return self._poll(rest.split("/", 1)[1])
            if method == "GET" and rest == "operations":
                items = [{k: v for k, v in op.items() if not k.startswith("_")} for op in self.operations.values()
                         if op["zone"] == zone and _operation_matches(op, query)]
                return 200, {"kind": "compute#operationList", "items": items}
        return 404, _error(404, "notFound", f"unsupported {method} {parsed.path}")

    def preempt(self, zone: str, name: str) -> None:
        with self.lock:
            del self.instances[(zone, name)]
            op_id = next(self._ids)
            self.operations[f"systemevent-{op_id}"] = {
                "kind": "compute#operation", "id": str(op_id), "name": f"systemevent-{op_id}", "zone": zone,
                "operationType": "compute.instances.preempted", "status": "DONE", "progress": 100,
                "targetLink": f"https://www.googleapis.com/compute/v1/projects/p/zones/{zone}/instances/{name}"}

    def _insert(self, zone: str, body: dict[str, Any], request_id: str) -> tuple[int, dict[str, Any]]:
        if self.fail_next_posts > 0:
            self.fail_next_posts -= 1
            return 503, _error(503, "backendError", "Internal error. Please try again.")
        if request_id and request_id in self._by_request_id:  # a retried request: the same operation
            return 200, self.operations[self._by_request_id[request_id]]
        name = body.get("name", "")
        if (zone, name) in self.instances:
            return 409, _error(409, "alreadyExists", f"The resource 'projects/p/zones/{zone}/instances/{name}' "
                                                     "already exists")
        error = None
        if zone in self.exhausted_zones:
            error = ("ZONE_RESOURCE_POOL_EXHAUSTED", f"The zone '{zone}' does not have enough resources available "
                                                      "to fulfill the request.", 503, "SERVICE UNAVAILABLE")
        elif self.quota_exceeded:
            error = ("QUOTA_EXCEEDED", "Quota 'CPUS' exceeded. Limit: 24.0 in region.", 403, "FORBIDDEN")
        else:
            self.instances[(zone, name)] = {**body, "status": "PROVISIONING", "zone": zone}
        op = self._operation(zone, "insert", name, error)
        if request_id:
            self._by_request_id[request_id] = op["name"]
        return 200, op

    def _delete(self, zone: str, name: str) -> tuple[int, dict[str, Any]]:
        if (zone, name) not in self.instances:
            return 404, _error(404, "notFound", f"The resource 'projects/p/zones/{zone}/instances/{name}' was not found")
        del self.instances[(zone, name)]
        return 200, self._operation(zone, "delete", name, None)

    def _operation(self, zone: str, kind: str, target: str,
                   error: tuple[str, str, int, str] | None) -> dict[str, Any]:
        op_id = next(self._ids)
        op: dict[str, Any] = {"kind": "compute#operation", "id": str(op_id), "name": f"operation-{op_id}",
                              "zone": zone, "operationType": kind, "targetLink": f"instances/{target}",
                              "status": "RUNNING", "progress": 0}
        if error is not None:  # errors show once the operation is done
            op["_error"] = error
        self.operations[op["name"]] = op
        self._polls[op["name"]] = 0
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def _poll(self, name: str) -> tuple[int, dict[str, Any]]:
        op = self.operations.get(name)
        if op is None:
            return 404, _error(404, "notFound", f"operation {name} not found")
        self._polls[name] += 1
        if self._polls[name] >= self.polls_until_done:
            op["status"], op["progress"] = "DONE", 100
            if "_error" in op:
                code, message, status, status_message = op["_error"]
                op["error"] = {"errors": [{"code": code, "message": message}]}
                op["httpErrorStatusCode"], op["httpErrorMessage"] = status, status_message
        return 200, {k: v for k, v in op.items() if not k.startswith("_")}


def _matches(instance: dict[str, Any], query: dict[str, list[str]]) -> bool:
    """The one filter form the provider sends: labels.KEY = VALUE."""
    for text in query.get("filter", []):
        found = re.fullmatch(r"labels\.(\S+)\s*=\s*(\S+)", text.strip())
        if found and instance.get("labels", {}).get(found[1]) != found[2]:
            return False
    return True


def _operation_matches(op: dict[str, Any], query: dict[str, list[str]]) -> bool:
    """The one operations filter the provider sends: operationType = "TYPE"."""
    for text in query.get("filter", []):
        found = re.fullmatch(r'operationType\s*=\s*"?([^"\s]+)"?', text.strip())
        if found and op.get("operationType") != found[1]:
            return False
    return True


def _error(status: int, reason: str, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}}


class FakeComputeServer:
    """Runs a FakeCompute on 127.0.0.1 in a thread; `endpoint` is what the client points at."""

    def __init__(self, fake: FakeCompute | None = None) -> None:
        self.fake = fake or FakeCompute()
        fake_ = self.fake

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, answer = fake_.handle(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # shutdown() waits out one poll of serve_forever: 0.5 s by default, at every test's teardown
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeComputeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
