"""Fault-drill helpers: kill components by pid, count container executions, verify the read models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from deploy.processes import ProcessTable


def sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def worker_pids(home: Path) -> dict[str, int]:
    table = ProcessTable(home)
    table.run_dir = home / "instances"
    return {name: pid for name in table.names() if (pid := table.pid(name))}


def restart_like_a_supervisor(home: Path, name: str, pid: int) -> int:
    """SIGKILL a worker agent and start the same command again, as systemd would on a VM.

    The instance itself survives (its containers keep running under conmon); only the agent died.
    """
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    environ = dict(line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in line)
    sigkill(pid)
    with open(home / "instances" / f"{name}.log", "ab") as log:
        proc = subprocess.Popen([c.decode() for c in cmdline], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=environ)
    (home / "instances" / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


class ContainerStarts:
    """Streams podman's container start events; counts main-step starts per (batch, job)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(["podman", "events", "--filter", "event=start", "--format", "json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        time.sleep(1.0)  # podman events needs a moment before it reports new events

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.append(line)

    def stop(self) -> None:
        time.sleep(1.0)
        self._proc.terminate()
        self._proc.wait(10)
        self._reader.join(10)

    def main_starts(self, home: Path, batch_id: int) -> dict[int, list[str]]:
        """Each job's main-container starts on this stack's instances, as attempt labels (batch-job-attempt).

        Other stacks on the machine (other tests) have batch ids too, so only this stack's instances
        (their logs under <home>/instances) count."""
        ours = {p.stem for p in (home / "instances").glob("*.log")}
        starts: dict[int, list[str]] = {}
        seen: set[str] = set()
        for line in self._lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            # podman re-reads its events file when it rotates (1 MB), so one start can be streamed
            # twice: count each container once (the worker never restarts a container)
            if event.get("ID") in seen:
                continue
            seen.add(event.get("ID"))
            attrs = event.get("Attributes") or {}
            label = attrs.get("squall.attempt", "")
            if (attrs.get("squall.step") == "main" and label.startswith(f"{batch_id}-")
                    and attrs.get("squall.instance") in ours):
                starts.setdefault(int(label.split("-")[1]), []).append(label)
        return starts
