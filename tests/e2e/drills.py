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
    with it: the provider's <name>.cmd), its containers and scratch disks go too. An isolated
    worker's host loses its network namespace instead (delete_host_namespace)."""
    from deploy.worker_hosts import WorkerHosts

    if WorkerHosts(home).get(name) is not None:
        delete_host_namespace(home, name)
        return
    (home / "instances" / f"{name}.cmd").unlink(missing_ok=True)
    sigkill(worker_pids(home)[name])
    subprocess.run(["podman", "rm", "-f", "--filter", f"label=squall.instance={name}"],
                   capture_output=True, timeout=60)
    scratch = str(home / "instances" / name)
    mounts = Path("/proc/mounts").read_text().splitlines()
    for mount_point in [line.split()[1] for line in mounts if line.split()[1].startswith(scratch)]:
        subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)


def delete_host_namespace(home: Path, name: str) -> str:
    """An isolated worker's host loses its network: its namespace is deleted, and with it the veth
    pair that joined it to the fleet LAN (`ip netns del` alone only drops the name while processes
    are in it). Its agent runs on, cut off; the provider finds the host gone and ends it. Returns the
    namespace's name."""
    from deploy.worker_hosts import WorkerHosts

    record = WorkerHosts(home).get(name)
    assert record is not None, f"{name} has no worker host"
    subprocess.run(["ip", "netns", "del", record.netns], check=True, capture_output=True, timeout=30)
    subprocess.run(["ip", "link", "del", record.netns], check=True, capture_output=True, timeout=30)
    return record.netns


class ContainerStarts:
    """podman's container start events; counts main-step starts per (batch, job). Shared workers'
    containers are the machine's podman's (streamed); isolated workers run their own podman service
    in their hosts, whose event logs are read at `stop`."""

    def __init__(self, home: Path | None = None) -> None:
        self._home = home
        self._since = time.time()
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
        if self._home is not None:
            self._lines += self._host_events(self._home)

    def _host_events(self, home: Path) -> list[str]:
        from deploy.worker_hosts import WorkerHosts

        hosts = WorkerHosts(home)
        lines: list[str] = []
        for record in hosts.ours():
            proc = subprocess.run([*hosts.enter_command(record.instance), "podman", "events", "--since",
                                   str(int(self._since) - 1), "--until", str(int(time.time()) + 1), "--filter",
                                   "event=start", "--format", "json"], capture_output=True, text=True, timeout=120)
            lines += proc.stdout.splitlines()
        return lines

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
