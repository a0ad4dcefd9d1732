"""Make sure a podman REST API service answers on a unix socket; start one if not.

    python -m worker.podman_service --socket /run/squall/podman.sock

The service inherits this process's hard rlimits, which must match containers.conf's
default_ulimits (deploy/podman/setup.sh writes both from the same `ulimit -H` values): start it
from the same kind of shell that ran setup.sh. Its pid and log sit next to the socket
(service.pid, service.log); stop it with `kill $(cat .../service.pid)`.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SOCKET = Path("/run/squall/podman.sock")


class PodmanServiceError(RuntimeError):
    """The service could not be started; the message says why and what to run."""


def ping(socket_path: Path, timeout_s: float = 1.0) -> bool:
    """True if a podman API answers `GET /_ping` with OK on the socket."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(socket_path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            reply = b""
            while chunk := s.recv(4096):
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0] and reply.endswith(b"OK")


def ensure_podman_service(socket_path: Path = DEFAULT_SOCKET, timeout_s: float = 15.0) -> int | None:
    """Return None if a service already answers, else start one and return its pid."""
    if ping(socket_path):
        return None
    podman = shutil.which("podman")
    if podman is None:
        raise PodmanServiceError("podman is not installed: run deploy/podman/setup.sh as root")
    run_dir = socket_path.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    if socket_path.exists():
        socket_path.unlink()  # stale socket of a service that died
    log_path = run_dir / "service.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket_path}"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    (run_dir / "service.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ping(socket_path):
            return proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise PodmanServiceError(f"podman system service did not answer on {socket_path} within {timeout_s:g} s "
                             f"(exit status {proc.poll()}); its log {log_path} ends with:\n{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.podman_service", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help="unix socket path")
    args = parser.parse_args(argv)
    try:
        pid = ensure_podman_service(args.socket)
    except PodmanServiceError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"podman API on unix://{args.socket}" + (f" (started, pid {pid})" if pid else " (already running)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
