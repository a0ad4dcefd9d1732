"""The data plane: copying job files between gs:// and /io, and the agent's CPU per job for shipping
its logs, usage and status, against a fake-gcs-server this benchmark starts (filesystem backend).

    python tests/bench/bench_dataplane.py [--big-mib 1024] [--small 1000] [--jobs 200]

- one big object (default 1 GiB): the output step's upload out of /io, the input step's download
  into /io (worker/storage.py JobFiles, google-cloud-storage underneath), MiB/s each way;
- many small objects (default 1,000 of 1 KiB): one directory out of /io to a gs:// prefix, then
  the prefix into /io, objects/s each way;
- per job, the agent's CPU spent on log/status upload: what worker/records.py does for a typical
  short job (a main log of a few lines shipped whole at the end, its usage series, the final
  status document, the spool removed), CPU of this whole process (the client's threads included;
  the server is another process) divided by the jobs. Goal <= 10 ms per job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.objectstore import FakeGcsServer  # noqa: E402
from events.objectstore.gcs import GcsObjectStore  # noqa: E402
from worker.records import AttemptIds, AttemptRecords  # noqa: E402
from worker.storage import JobFiles, SharedStore  # noqa: E402

MIB = 1 << 20
BUCKET = "bench-data"
SYSTEM = "squall-system"
USAGE = json.dumps({"columns": ["time_msecs", "memory_in_bytes", "cpu_usage", "io_storage_in_bytes"],
                    "index": list(range(12)), "data": [[1_700_000_000_000 + 100 * i, 5 << 20, 0.25, 0]
                                                       for i in range(12)]}).encode()


def write_big(path: Path, mib: int) -> None:
    block = os.urandom(MIB)  # incompressible, and cheap to repeat
    with open(path, "wb") as f:
        for i in range(mib):
            f.write(block[i % 7:] + block[:i % 7])


async def copies(store: GcsObjectStore, work: Path, big_mib: int, small: int) -> None:
    files = JobFiles(SharedStore(store))
    io = work / "io"
    io.mkdir()
    write_big(io / "big.bin", big_mib)
    t = time.perf_counter()
    await files.upload("bench", io / "big.bin", f"gs://{BUCKET}/big.bin", io, "/io/big.bin")
    up = time.perf_counter() - t
    (io / "big.bin").unlink()
    t = time.perf_counter()
    await files.download("bench", f"gs://{BUCKET}/big.bin", io / "big.bin", io)
    down = time.perf_counter() - t
    assert (io / "big.bin").stat().st_size == big_mib * MIB
    (io / "big.bin").unlink()
    print(f"one {big_mib} MiB object: out of /io {up:6.1f} s ({big_mib / up:6.1f} MiB/s), "
          f"into /io {down:6.1f} s ({big_mib / down:6.1f} MiB/s)")

    tree = io / "many"
    tree.mkdir()
    for i in range(small):
        (tree / f"f{i:05d}").write_bytes(os.urandom(1024))
    t = time.perf_counter()
    report = await files.upload("bench", tree, f"gs://{BUCKET}/many", io, "/io/many")
    up = time.perf_counter() - t
    shutil.rmtree(tree)
    t = time.perf_counter()
    report = await files.download("bench", f"gs://{BUCKET}/many", io / "many", io)
    down = time.perf_counter() - t
    assert report.objects == small
    print(f"{small} objects of 1 KiB: out of /io {up:6.1f} s ({small / up:6.0f} objects/s), "
          f"into /io {down:6.1f} s ({small / down:6.0f} objects/s)")


async def records_cpu(store: GcsObjectStore, work: Path, jobs: int) -> None:
    records = AttemptRecords(store, SYSTEM, work / "spool")

    async def one_job(job_id: int) -> None:
        ids = AttemptIds(1, job_id, "a1")
        log = records.open_log(ids, "main")
        log.start_flushing()
        for line in range(5):
            log.append(f"line {line} of job {job_id}\n".encode())
        await log.close()
        await records.write_usage(ids, "main", USAGE)
        await records.write_status(ids, {"version": 5, "state": "succeeded", "batch_id": 1, "job_id": job_id,
                                         "timing": {"main": {"start_time": 1, "finish_time": 2, "duration": 1}}})
        assert await records.finish(ids)
        records.discard(ids)

    for j in range(5):  # warm-up: connections, imports
        await one_job(100_000 + j)
    cpu, wall = time.process_time(), time.perf_counter()
    for j in range(jobs):
        await one_job(j + 1)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    listed = await store.list(SYSTEM, "jobs/1/1/")
    print(f"agent CPU per job on log/status upload: {cpu / jobs * 1000:5.2f} ms (goal <= 10 ms; "
          f"{wall / jobs * 1000:.1f} ms wall; 3 objects per job: {sorted(o.key.split('/', 4)[-1] for o in listed)})")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="squall-bench-dataplane-"))
    server = FakeGcsServer(work / "storage")
    try:
        store = GcsObjectStore(endpoint=server.start())
        server.stop_when_gone(os.getpid(), remove_data=True)  # nothing left behind if this run dies
        for bucket in (BUCKET, SYSTEM):
            await store.create_bucket(bucket)
        await records_cpu(store, work, args.jobs)
        await copies(store, work, args.big_mib, args.small)
        await store.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
