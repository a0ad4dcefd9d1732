"""Start, find and stop the local stack's background processes (one pid file each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    module: str
    args: tuple[str, ...]


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie still answers kill(pid, 0))."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def runs_module(pid: int, module: str) -> bool:
    """The pid still runs `python -m module` (pids are reused; a stale pid file must not count)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a == b"-m" and m == module.encode() for a, m in zip(argv, argv[1:], strict=False))


class ProcessTable:
    """Background processes of one stack: pid files under <home>/run, logs under <home>/logs."""

    def __init__(self, home: Path) -> None:
        self.run_dir = home / "run"
        self.log_dir = home / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        try:
            pid = int(self.pid_file(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def names(self) -> list[str]:
        if not self.run_dir.exists():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.pid"))

    def start(self, spec: ProcessSpec, env: dict[str, str] | None = None) -> int:
        """Start the process unless it is already running (idempotent); returns its pid."""
        running = self.pid(spec.name)
        if running:
            return running
        return self.spawn(spec, env).pid

    def spawn(self, spec: ProcessSpec, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start the process (in a session of its own, appending to its log) and record its pid."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file(spec.name), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", spec.module, *spec.args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, **(env or {})},
            )
        self.pid_file(spec.name).write_text(str(proc.pid))
        return proc

    def stop(self, name: str, timeout_s: float = 15.0) -> bool:
        """SIGTERM, wait, then SIGKILL the whole process group. True if it was running."""
        pid = self.pid(name)
        self.pid_file(name).unlink(missing_ok=True)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            _signal_group(pid, signal.SIGKILL)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
