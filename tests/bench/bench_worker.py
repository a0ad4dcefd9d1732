"""Worker overhead: the agent's per-job latency against a raw `podman run`, side by side, and
containers/s through the agent on this machine.

    python tests/bench/bench_worker.py [--jobs 15] [--burst 40] [--socket /run/squall/podman.sock]

Needs root and podman (deploy/podman/setup.sh). Per-job latency of the agent is from appending the
AttemptAssigned to the in-memory log until its MJC is in the log: it includes the scratch volume
(loop-mounted ext4), the job sandbox (worker/sandbox.py), journal fsyncs, shipping the log, usage and
status.json to squall's bucket in a fake-gcs-server this benchmark starts, and both events; the
sandbox's own steps are also timed alone. The raw baseline is
`podman run --rm --network none localhost/busybox true`. Runs alternate (raw, agent, raw, ...)
so background load on a shared machine hits both alike. Medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.objectstore import FakeGcsServer  # noqa: E402
from events.catalog import JobAttemptCompleted  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.log import partition_for  # noqa: E402
from events.memory_log import MemoryEventLog  # noqa: E402
from events.objectstore.gcs import GcsObjectStore  # noqa: E402
from events.publisher import Publisher  # noqa: E402
from events.topics import Topics  # noqa: E402
from tests.unit.worker.factories import assignment  # noqa: E402
from worker.agent import Agent, AgentSettings  # noqa: E402
from worker.attempt import AttemptServices  # noqa: E402
from worker.clock import SystemClock  # noqa: E402
from worker.journal import Journal  # noqa: E402
from worker.mounts import userns_fd  # noqa: E402
from worker.podman_runtime import PodmanRuntime  # noqa: E402
from worker.podman_service import ensure_podman_service  # noqa: E402
from worker.records import AttemptRecords  # noqa: E402
from worker.scratch import ScratchManager  # noqa: E402
from worker.storage import JobFiles, SharedStore  # noqa: E402

IMAGE = "localhost/busybox:latest"
BATCH_ID = 1


def sandbox_steps(runtime: PodmanRuntime, n: int = 30) -> tuple[float, float]:
    """Median ms of the sandbox's own work per container: lease an id slot, mount the idmapped
    rootfs (image layers + overlay on a scratch dir), then unmount and release; and of the same
    with a fresh user-namespace fd (a slot not used before by this process)."""
    image = runtime._images.get(IMAGE) or runtime._inspect_image(IMAGE)  # noqa: SLF001 - bench internals
    assert image is not None
    slots, rootfs = runtime._slots, runtime._rootfs  # noqa: SLF001
    scratch = Path(tempfile.mkdtemp(prefix="squall-bench-sandbox-"))
    times = []
    for i in range(n):
        t = time.perf_counter()
        slot = slots.acquire(f"bench-sandbox-{i}")
        rootfs.build(slot, list(image.layers), slots.mapping(slot), scratch / str(i), 1 << 20)
        rootfs.teardown(slot)
        slots.release(f"bench-sandbox-{i}")
        times.append(time.perf_counter() - t)
    fresh = []
    for i in range(5):
        t = time.perf_counter()
        os.close(userns_fd(2_000_000_000 + i * 65536, 2_000_000_000 + i * 65536, 65536))
        fresh.append(time.perf_counter() - t)
    shutil.rmtree(scratch, ignore_errors=True)
    return statistics.median(times) * 1000, statistics.median(fresh) * 1000


def raw_podman_run() -> float:
    t = time.perf_counter()
    subprocess.run(["podman", "run", "--rm", "--network", "none", IMAGE, "true"], check=True)
    return time.perf_counter() - t


class MjcWaiter:
    """Follows the batch partition of BATCH_ID and counts completions."""

    def __init__(self, log: MemoryEventLog, topics: Topics) -> None:
        self.log, self.topic, self.offset, self.codec = log, topics.batch, 0, Codec()
        self.partition = partition_for(str(BATCH_ID).encode(), topics.batch_partitions)

    async def wait(self, n: int) -> None:
        seen = 0
        while seen < n:
            for r in await self.log.read(self.topic, self.partition, self.offset, timeout_ms=1000):
                self.offset = r.offset + 1
                seen += isinstance(self.codec.decode(r.value), JobAttemptCompleted)


async def main(args: argparse.Namespace) -> None:
    ensure_podman_service(args.socket)
    home = Path(tempfile.mkdtemp(prefix="squall-bench-worker-"))
    topics = Topics(prefix="bench.")
    log = MemoryEventLog()
    await log.create_topics(topics.specs())
    runtime = PodmanRuntime(args.socket)
    name = "bench-worker"
    journal = Journal(home / "instances" / name)
    storage = FakeGcsServer(home / "storage")
    store = GcsObjectStore(endpoint=storage.start())
    storage.stop_when_gone(os.getpid())  # no server left behind if this run dies
    await store.create_bucket("squall-system")
    services = AttemptServices(instance_name=name, runtime=runtime,
                               scratch=ScratchManager(home / "instances" / name / "scratch", mode=args.scratch),
                               files=JobFiles(SharedStore(store)),
                               records=AttemptRecords(store, "squall-system", home / "instances" / name / "spool"),
                               clock=SystemClock())
    settings = AgentSettings(instance_name=name, cores=2, memory_bytes=4 << 30, storage_gib=10,
                             heartbeat_interval_s=5, read_timeout_ms=1000)
    agent = Agent(settings, log, topics, services, journal)
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    publisher = Publisher(log, topics)
    waiter = MjcWaiter(log, topics)
    job_ids = iter(range(1, 1_000_000))

    def job():
        return assignment(name, ("true",), batch_id=BATCH_ID, job_id=next(job_ids), cores_mcpu=250,
                          memory_bytes=64 << 20)

    # warm-up: image cache, network setup, first scratch volume
    raw_podman_run()
    await publisher.publish([job()])
    await waiter.wait(1)

    raw, through_agent = [], []
    for _ in range(args.jobs):
        raw.append(await asyncio.to_thread(raw_podman_run))
        t = time.perf_counter()
        await publisher.publish([job()])
        await waiter.wait(1)
        through_agent.append(time.perf_counter() - t)
    raw_ms, agent_ms = statistics.median(raw) * 1000, statistics.median(through_agent) * 1000
    print(f"per job, median of {args.jobs} (scratch={args.scratch}):")
    print(f"  raw podman run --rm --network none {IMAGE} true : {raw_ms:7.1f} ms")
    print(f"  agent: AttemptAssigned -> MJC in the log           : {agent_ms:7.1f} ms")
    print(f"  ratio agent / raw                                   : {agent_ms / raw_ms:7.2f}x  (aim <= 1.5x)")

    steps_ms, fresh_ns_ms = await asyncio.to_thread(sandbox_steps, runtime)
    print(f"sandbox per container (lease + idmapped rootfs mount + unmount + release): {steps_ms:.1f} ms; "
          f"a user namespace not cached yet adds {fresh_ns_ms:.1f} ms")

    t = time.perf_counter()
    await publisher.publish([job() for _ in range(args.burst)])
    await waiter.wait(args.burst)
    burst_s = time.perf_counter() - t
    print(f"burst: {args.burst} jobs of 250 mCPU on 2 cores through the agent: {burst_s:.2f} s, "
          f"{args.burst / burst_s:.1f} containers/s")

    stop.set()
    await task
    journal.close()
    await runtime.close()
    await log.close()
    await store.close()
    storage.stop()
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=15)
    parser.add_argument("--burst", type=int, default=40)
    parser.add_argument("--socket", type=Path, default=Path("/run/squall/podman.sock"))
    parser.add_argument("--scratch", choices=("loop", "directory"), default="loop")
    asyncio.run(main(parser.parse_args()))
