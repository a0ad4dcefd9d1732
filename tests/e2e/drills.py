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


def lose_instance(home: Path, name: str) -> None:
    """The whole local instance dies, as a VM would: its agent is not restarted (its init is gone
    with it: the provider's <name>.cmd), its containers and scratch disks go too."""
    (home / "instances" / f"{name}.cmd").unlink(missing_ok=True)
    sigkill(worker_pids(home)[name])
    subprocess.run(["podman", "rm", "-f", "--filter", f"label=squall.instance={name}"],
                   capture_output=True, timeout=60)
    scratch = str(home / "instances" / name)
    mounts = Path("/proc/mounts").read_text().splitlines()
    for mount_point in [line.split()[1] for line in mounts if line.split()[1].startswith(scratch)]:
        subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)


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
