"""Real containers through the whole embedded stack against raw podman at the same parallelism, in
one run; each component's CPU while idle and per job.

    python tests/bench/bench_stack.py [--jobs 200] [--parallelism 4] [--idle 30] [--keep-home]

Needs root and podman (deploy/podman/setup.sh). Starts its own stack (`squall up` with its own home
under /tmp and its own port; one local worker with parallelism/4 cores, so at most `parallelism`
jobs of 0.25 cores run at once) and stops it at the end. Prints:
- idle: each component's CPU (process and its children, e.g. PostgreSQL's backends) over --idle
  seconds once the stack is up and its worker has run a warm-up job, and the total;
- throughput: --jobs `true` jobs (cpu 0.25, standard memory, localhost/busybox) in one batch, from the
  create-fast request until the API says the batch is complete, against `podman run --rm
  --network none localhost/busybox true` by `parallelism` threads; raw runs go before and after the
  stack's (half the jobs each), so load from other work on the machine hits both alike;
- CPU per job of each component over the stack's run (from /proc: its process tree, children such
  as the agent's mkfs/mount included), the worker agent's own process apart from its children; and
  the podman API service, conmon and the containers (podman's `libpod_parent` cgroups), which every
  podman user on the machine shares, so other work there inflates them; the same for the raw runs
  (the podman CLI processes instead of the service).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import yaml  # noqa: E402

from deploy.stack import free_port  # noqa: E402

IMAGE = "localhost/busybox:latest"
TCK = os.sysconf("SC_CLK_TCK")
# podman's cgroup parent with the cgroupfs manager: conmon/ (every conmon) and libpod-<id> (containers)
PODMAN_CGROUPS = (Path("/sys/fs/cgroup/cpuacct/libpod_parent"), Path("/sys/fs/cgroup/libpod_parent"))


@dataclass(frozen=True)
class Cpu:
    own: float  # seconds of user+system CPU of the process itself
    children: float  # of its descendants: live ones, and the reaped ones its kernel counters hold


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU s, reaped children's CPU s) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TCK, (int(fields[13]) + int(fields[14])) / TCK


def process_cpu(roots: dict[str, int]) -> dict[str, Cpu]:
    """CPU of each root and its descendants, a descendant that is itself a root counted as its own."""
    stats: dict[int, tuple[int, float, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    listed = set(roots.values())
    out = {}
    for name, root in roots.items():
        if root not in stats:
            out[name] = Cpu(0.0, 0.0)
            continue
        own, reaped = stats[root][1], stats[root][2]
        below, todo = reaped, list(children.get(root, []))
        while todo:
            pid = todo.pop()
            if pid in listed:
                continue
            below += stats[pid][1] + stats[pid][2]
            todo.extend(children.get(pid, []))
        out[name] = Cpu(own, below)
    return out


def cgroup_cpu(sub: str = "") -> float:
    """CPU seconds of podman's cgroup parent (or its child `sub`), v1 or v2; 0 if not found."""
    for parent in PODMAN_CGROUPS:
        directory = parent / sub if sub else parent
        try:
            if (directory / "cpuacct.usage").exists():
                return int((directory / "cpuacct.usage").read_text()) / 1e9
            for line in (directory / "cpu.stat").read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
        except (OSError, ValueError):
            continue
    return 0.0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def squall(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from services.cli import main; main()", *args], cwd=REPO,
                          capture_output=True, text=True, check=check)


def podman_service_pid(socket_path: str = "/run/squall/podman.sock") -> int | None:
    found = subprocess.run(["pgrep", "-f", f"podman system service.*{socket_path}"], capture_output=True, text=True)
    pids = found.stdout.split()
    return int(pids[0]) if pids else None


class Stack:
    def __init__(self, home: Path, port: int, cores: int) -> None:
        self.home, self.port, self.cores = home, port, cores
        self.status: dict = {}
        self.http: httpx.Client | None = None

    def up(self) -> None:
        squall("up", "--home", str(self.home), "--port", str(self.port), "--workers", "1",
               "--worker-cores", str(self.cores))
        self.status = json.loads(squall("status", "--home", str(self.home), "--json").stdout)
        self._one_worker_only()
        self.http = httpx.Client(base_url=f"{self.status['api_url']}/api/v1alpha", timeout=60.0,
                                 headers={"Authorization": f"Bearer {self.status['token']}"})

    def _one_worker_only(self) -> None:
        """The stack's pools allow a second worker under load; this bench measures one, so that at
        most `parallelism` jobs run at once: cap every pool at one instance and restart the
        autoscaler (the supervisor starts it again at once; it reads the pools when it starts)."""
        pools_file = self.home / "pools.yaml"
        pools = yaml.safe_load(pools_file.read_text())
        for pool in pools["pools"]:
            pool["max_instances"] = 1
        pools_file.write_text(yaml.safe_dump(pools, sort_keys=False))
        old = self.status["components"]["autoscaler"]["pid"]
        os.kill(old, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            component = json.loads(squall("status", "--home", str(self.home), "--json").stdout)["components"]
            if component["autoscaler"].get("pid") not in (None, old) and component["autoscaler"].get("healthy"):
                return
            time.sleep(0.5)
        raise RuntimeError("the autoscaler did not come back after its restart")

    def down(self) -> None:
        if self.http is not None:
            self.http.close()
        squall("down", "--home", str(self.home), check=False)

    def pids(self) -> dict[str, int]:
        status = json.loads(squall("status", "--home", str(self.home), "--json").stdout)
        pids = {name: c["pid"] for name, c in status["components"].items() if c.get("pid")}
        postmaster = self.home / "postgres" / "postmaster.pid"
        if postmaster.exists():
            pids["postgres"] = int(postmaster.read_text().split()[0])
        for w in status["workers"]:
            if w.get("pid"):
                pids["worker agent"] = w["pid"]
        return pids

    def submit(self, n: int) -> int:
        assert self.http is not None
        bunch = [{"job_id": i, "process": {"type": "docker", "image": IMAGE, "command": ["true"]},
                  "in_update_parent_ids": [], "resources": {"cpu": "0.25", "memory": "standard"}}
                 for i in range(1, n + 1)]
        body = {"batch": {"billing_project": self.status["billing_project"], "token": uuid.uuid4().hex,
                          "n_jobs": n}, "bunch": bunch, "job_groups": []}
        resp = self.http.post("/batches/create-fast", json=body)
        resp.raise_for_status()
        return int(resp.json()["id"])

    def wait(self, batch_id: int, timeout_s: float) -> dict:
        assert self.http is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = self.http.get(f"/batches/{batch_id}").raise_for_status().json()
            if batch["complete"]:
                return batch
            time.sleep(0.1)
        raise TimeoutError(f"batch {batch_id} not complete in {timeout_s:.0f} s")

    def run_batch(self, n: int) -> float:
        started = time.monotonic()
        batch = self.wait(self.submit(n), timeout_s=max(300.0, n * 3.0))
        elapsed = time.monotonic() - started
        if batch["n_succeeded"] != n:
            raise RuntimeError(f"only {batch['n_succeeded']} of {n} jobs succeeded: {batch}")
        return elapsed


def raw_podman(n: int, parallelism: int) -> float:
    """Seconds for n `podman run --rm` of `true`, by `parallelism` threads."""
    todo = iter(range(n))
    lock = threading.Lock()
    failures: list[str] = []

    def work() -> None:
        while True:
            with lock:
                if next(todo, None) is None:
                    return
            done = subprocess.run(["podman", "run", "--rm", "--network", "none", IMAGE, "true"],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                failures.append(done.stderr)

    threads = [threading.Thread(target=work) for _ in range(parallelism)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} raw podman runs failed: {failures[0]}")
    return time.monotonic() - started


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--parallelism", type=int, default=4, help="a multiple of 4 (jobs of 0.25 cores)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU to measure")
    parser.add_argument("--keep-home", action="store_true", help="leave the stack's home (logs) behind")
    args = parser.parse_args()
    if args.parallelism % 4:
        parser.error("--parallelism must be a multiple of 4 (the worker gets parallelism/4 cores)")
    home = Path(tempfile.mkdtemp(prefix="squall-bench-stack-"))
    stack = Stack(home, free_port(), args.parallelism // 4)
    try:
        started = time.monotonic()
        stack.up()
        stack.run_batch(1)  # warm-up: the worker is up, the image's layers are cached
        print(f"stack up and warm in {time.monotonic() - started:.0f} s ({home})")

        time.sleep(10)  # let start-up work settle
        pids = stack.pids()
        before, t0 = process_cpu(pids), time.monotonic()
        time.sleep(args.idle)
        after, wall = process_cpu(pids), time.monotonic() - t0
        idle = {k: (after[k].own + after[k].children - before[k].own - before[k].children) / wall * 100
                for k in pids}
        print(f"idle over {wall:.0f} s (% of one core; load average {load()}):")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(idle.items(), key=lambda kv: -kv[1]))
              + f"; total {sum(idle.values()):.2f}")

        half = max(1, args.jobs // 2)
        raw_cpu = [children_cpu(), cgroup_cpu("conmon"), cgroup_cpu()]
        raw_before = raw_podman(half, args.parallelism)
        raw_cpu = [after - before for after, before in zip([children_cpu(), cgroup_cpu("conmon"), cgroup_cpu()],
                                                           raw_cpu, strict=True)]
        podman_pid = podman_service_pid()
        roots = {**pids, **({"podman API service (shared)": podman_pid} if podman_pid else {})}
        cpu0, conmon0, podman0 = process_cpu(roots), cgroup_cpu("conmon"), cgroup_cpu()
        elapsed = stack.run_batch(args.jobs)
        cpu1, conmon1, podman1 = process_cpu(roots), cgroup_cpu("conmon"), cgroup_cpu()
        raw_after = raw_podman(half, args.parallelism)
        stack_rate = args.jobs / elapsed
        raw_rates = [half / raw_before, half / raw_after]
        raw_rate = statistics.mean(raw_rates)
        print(f"{args.jobs} `true` jobs, cpu 0.25, {args.parallelism} at a time (load average {load()}):")
        print(f"  whole stack, create-fast -> batch complete: {elapsed:.1f} s = {stack_rate:.2f} jobs/s")
        print(f"  raw podman run --rm --network none, {args.parallelism}-way: {raw_rates[0]:.2f} jobs/s before, "
              f"{raw_rates[1]:.2f} after")
        print(f"  ratio stack / raw: {stack_rate / raw_rate:.2f}  (goal >= 0.8)")
        per_job = {k: ((cpu1[k].own + cpu1[k].children) - (cpu0[k].own + cpu0[k].children)) / args.jobs * 1000
                   for k in roots}
        per_job["conmon (shared cgroup)"] = (conmon1 - conmon0) / args.jobs * 1000
        per_job["containers (shared cgroup)"] = ((podman1 - podman0) - (conmon1 - conmon0)) / args.jobs * 1000
        print("  CPU per job, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in
                                                sorted(per_job.items(), key=lambda kv: -kv[1])))
        print(f"  raw podman CPU per job, ms (first raw run): the podman CLI {raw_cpu[0] / half * 1000:.1f}, "
              f"conmon {raw_cpu[1] / half * 1000:.1f}, containers {(raw_cpu[2] - raw_cpu[1]) / half * 1000:.1f}")
        if "worker agent" in roots:
            agent_own = (cpu1["worker agent"].own - cpu0["worker agent"].own) / args.jobs * 1000
            agent_kids = (cpu1["worker agent"].children - cpu0["worker agent"].children) / args.jobs * 1000
            print(f"  worker agent: {agent_own:.1f} ms its own process + {agent_kids:.1f} ms its children "
                  f"(mkfs, mount, umount) per job  (goal: agent <= 20 ms)")
    finally:
        stack.down()
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
