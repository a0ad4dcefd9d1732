"""The worker's data plane over the in-memory store: job files (gs:// <-> /io), the spool and its
shipping of logs/usage/status, reading logs back, and the agent's live-log endpoint."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx
import pytest

from events import failures
from events.objectstore import InMemoryObjectStore
from events.objectstore.joblogs import read_step_log
from events.objectstore.layout import log_chunks_prefix, log_key, resource_usage_key, status_key
from tests.unit.worker.factories import assignment
from tests.unit.worker.harness import DATA_BUCKET, SYSTEM_BUCKET, AgentHarness, mjcs
from worker.agent_http import build_app
from worker.fake_runtime import FakeProcess, FakeRuntime
from worker.records import AttemptIds, AttemptRecords
from worker.storage import JobFiles, SharedStore, StorageError

IDS = AttemptIds(3, 4, "a1")


@pytest.fixture
async def store() -> InMemoryObjectStore:
    s = InMemoryObjectStore()
    await s.create_bucket(DATA_BUCKET)
    await s.create_bucket(SYSTEM_BUCKET)
    return s


@pytest.fixture
def io(tmp_path: Path) -> Path:
    d = tmp_path / "io"
    d.mkdir()
    return d


# -- job files -----------------------------------------------------------------------------------

async def test_download_one_object_and_a_prefix_as_a_tree(store: InMemoryObjectStore, io: Path) -> None:
    files = JobFiles(SharedStore(store))
    await store.put(DATA_BUCKET, "in/one.txt", b"one")
    await store.put(DATA_BUCKET, "tree/a", b"A")
    await store.put(DATA_BUCKET, "tree/sub/b", b"BB")
    await store.put(DATA_BUCKET, "tree/dir-marker/", b"")  # a "folder" object some tools create
    report = await files.download("u", f"gs://{DATA_BUCKET}/in/one.txt", io / "x" / "one.txt", io)
    assert (io / "x" / "one.txt").read_bytes() == b"one" and (report.objects, report.bytes) == (1, 3)
    report = await files.download("u", f"gs://{DATA_BUCKET}/tree", io / "t", io)  # no object "tree": a prefix
    assert (io / "t" / "a").read_bytes() == b"A" and (io / "t" / "sub" / "b").read_bytes() == b"BB"
    assert (report.objects, report.bytes) == (2, 3)


async def test_a_missing_input_is_the_users_error(store: InMemoryObjectStore, io: Path) -> None:
    with pytest.raises(StorageError) as err:
        await JobFiles(SharedStore(store)).download("u", f"gs://{DATA_BUCKET}/nope", io / "x", io)
    assert err.value.cause == failures.INPUT_NOT_FOUND
    assert str(err.value) == f"input gs://{DATA_BUCKET}/nope not found"
    assert not failures.is_system_failure(err.value.cause)


async def test_an_unavailable_store_is_a_system_failure(store: InMemoryObjectStore, io: Path) -> None:
    await store.put(DATA_BUCKET, "x", b"x")
    store.outage = True
    with pytest.raises(StorageError) as err:
        await JobFiles(SharedStore(store)).download("u", f"gs://{DATA_BUCKET}/x", io / "x", io)
    assert err.value.cause == failures.STORAGE_UNAVAILABLE and failures.is_system_failure(err.value.cause)
    (io / "out").write_text("result")
    with pytest.raises(StorageError) as err:
        await JobFiles(SharedStore(store)).upload("u", io / "out", f"gs://{DATA_BUCKET}/out", io, "/io/out")
    assert err.value.cause == failures.STORAGE_UNAVAILABLE


async def test_object_names_cannot_climb_out_of_io(store: InMemoryObjectStore, io: Path) -> None:
    await store.put(DATA_BUCKET, "evil/../../../etc/cron.d/x", b"payload")
    with pytest.raises(StorageError, match="cannot be a path under /io"):
        await JobFiles(SharedStore(store)).download("u", f"gs://{DATA_BUCKET}/evil/", io / "d", io)
    assert not (io.parent / "etc").exists()


async def test_inputs_are_not_written_through_symlinks(store: InMemoryObjectStore, io: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (io / "link").symlink_to(outside)
    await store.put(DATA_BUCKET, "f", b"x")
    with pytest.raises(StorageError, match="outside /io"):
        await JobFiles(SharedStore(store)).download("u", f"gs://{DATA_BUCKET}/f", io / "link" / "f", io)
    assert os.listdir(outside) == []


async def test_upload_a_file_a_tree_and_refuse_symlinks(store: InMemoryObjectStore, io: Path) -> None:
    files = JobFiles(SharedStore(store))
    (io / "r.txt").write_text("result")
    (io / "tree" / "sub").mkdir(parents=True)
    (io / "tree" / "a").write_text("A")
    (io / "tree" / "sub" / "b").write_text("B")
    await files.upload("u", io / "r.txt", f"gs://{DATA_BUCKET}/out/r.txt", io, "/io/r.txt")
    await files.upload("u", io / "tree", f"gs://{DATA_BUCKET}/out/tree", io, "/io/tree")
    assert [o.key for o in await store.list(DATA_BUCKET, "out/")] == ["out/r.txt", "out/tree/a", "out/tree/sub/b"]
    (io / "tree" / "leak").symlink_to("/etc/hostname")
    with pytest.raises(StorageError, match="symlink") as err:
        await files.upload("u", io / "tree", f"gs://{DATA_BUCKET}/again", io, "/io/tree")
    assert err.value.cause == failures.OUTPUT_FAILED
    assert await store.list(DATA_BUCKET, "again/") == []  # refused before anything was copied
    with pytest.raises(StorageError, match="does not exist") as err:
        await files.upload("u", io / "missing", f"gs://{DATA_BUCKET}/m", io, "/io/missing")
    assert err.value.cause == failures.OUTPUT_FAILED


# -- the spool and shipping ----------------------------------------------------------------------

async def test_a_step_log_ships_chunks_while_open_and_one_object_at_close(store: InMemoryObjectStore,
                                                                          tmp_path: Path) -> None:
    records = AttemptRecords(store, SYSTEM_BUCKET, tmp_path / "spool", flush_interval_s=0.05)
    log = records.open_log(IDS, "main")
    log.start_flushing()
    log.append(b"line 1\n")
    await asyncio.sleep(0.2)
    log.append(b"line 2\n")
    await asyncio.sleep(0.2)
    chunks = await store.list(SYSTEM_BUCKET, log_chunks_prefix(3, 4, "a1", "main"))
    assert len(chunks) == 2  # one per flush with new bytes, none for quiet ones
    mid = await read_step_log(store, SYSTEM_BUCKET, 3, 4, "a1", "main")
    assert mid is not None and mid.data == b"line 1\nline 2\n" and not mid.complete
    tail = await read_step_log(store, SYSTEM_BUCKET, 3, 4, "a1", "main", tail_bytes=4)
    assert tail is not None and (tail.data, tail.size, tail.truncated) == (b"e 2\n", 14, True)
    await log.close()
    done = await read_step_log(store, SYSTEM_BUCKET, 3, 4, "a1", "main")
    assert done is not None and done.data == b"line 1\nline 2\n" and done.complete
    assert await store.list(SYSTEM_BUCKET, log_chunks_prefix(3, 4, "a1", "main")) == []


async def test_chunked_logs_are_read_in_order_and_stop_at_a_gap(store: InMemoryObjectStore) -> None:
    prefix = log_chunks_prefix(1, 1, "a", "main")
    await store.put(SYSTEM_BUCKET, f"{prefix}{7:015d}", b"world\n")
    await store.put(SYSTEM_BUCKET, f"{prefix}{0:015d}", b"hello, ")
    await store.put(SYSTEM_BUCKET, f"{prefix}{30:015d}", b"after a gap")
    read = await read_step_log(store, SYSTEM_BUCKET, 1, 1, "a", "main")
    assert read is not None and read.data == b"hello, world\n" and read.size == 13
    tail = await read_step_log(store, SYSTEM_BUCKET, 1, 1, "a", "main", tail_bytes=9)
    assert tail is not None and (tail.data, tail.truncated) == (b"o, world\n", True)


async def test_nothing_written_is_lost_when_the_store_is_down(store: InMemoryObjectStore, tmp_path: Path) -> None:
    records = AttemptRecords(store, SYSTEM_BUCKET, tmp_path / "spool", flush_interval_s=0.05)
    log = records.open_log(IDS, "main")
    log.start_flushing()
    log.append(b"before the outage\n")
    await asyncio.sleep(0.2)  # shipped as a chunk
    store.outage = True
    log.append(b"during the outage\n")
    await asyncio.sleep(0.2)
    await log.close()
    await records.write_usage(IDS, "main", b'{"columns": []}')
    await records.write_status(IDS, {"state": "succeeded"})
    assert await records.finish(IDS) is False  # still down: all of it is kept in the spool
    assert records.read_spooled_log(IDS, "main") == (b"before the outage\nduring the outage\n", 36)
    store.outage = False
    mid = await read_step_log(store, SYSTEM_BUCKET, 3, 4, "a1", "main")
    assert mid is not None and mid.data == b"before the outage\n"  # what was shipped stayed readable
    assert await records.finish(IDS) is True
    records.discard(IDS)
    done = await read_step_log(store, SYSTEM_BUCKET, 3, 4, "a1", "main")
    assert done is not None and done.data == b"before the outage\nduring the outage\n" and done.complete
    assert await store.get(SYSTEM_BUCKET, resource_usage_key(3, 4, "a1", "main")) == b'{"columns": []}'
    assert json.loads(await store.get(SYSTEM_BUCKET, status_key(3, 4, "a1"))) == {"state": "succeeded"}
    assert not (tmp_path / "spool" / "jobs" / "3").exists()


async def test_a_restarted_agent_finds_spools_left_behind(store: InMemoryObjectStore, tmp_path: Path) -> None:
    first = AttemptRecords(store, SYSTEM_BUCKET, tmp_path / "spool")
    store.outage = True
    await first.write_status(IDS, {"state": "failed"})
    store.outage = False
    second = AttemptRecords(store, SYSTEM_BUCKET, tmp_path / "spool")  # knows nothing was shipped
    assert second.spooled_attempts() == [IDS]
    assert await second.finish(IDS) is True
    assert json.loads(await store.get(SYSTEM_BUCKET, status_key(3, 4, "a1"))) == {"state": "failed"}


# -- the agent end to end (fake runtime) ---------------------------------------------------------

def _harness(memory_log, topics, tmp_path: Path, store: InMemoryObjectStore, **kw) -> AgentHarness:  # type: ignore[no-untyped-def]
    return AgentHarness(log=memory_log, topics=topics, home=tmp_path, runtime=FakeRuntime(**kw),
                        instance_name="w-dp", store=store)


async def test_an_attempt_copies_in_runs_copies_out_and_ships_everything(memory_log, topics, tmp_path: Path,
                                                                         store: InMemoryObjectStore) -> None:
    harness = _harness(memory_log, topics, tmp_path, store,
                       program=lambda spec: FakeProcess(steps=[(0.3, b"working\n")]))
    await store.put(DATA_BUCKET, "in.txt", b"input bytes")

    async def job_writes_output() -> None:  # the fake container cannot write /io, so the test does
        while not list((harness.state_dir / "scratch").glob("*/vol/io/in.txt")):
            await asyncio.sleep(0.01)
        io = next((harness.state_dir / "scratch").glob("*/vol/io"))
        (io / "out.txt").write_bytes((io / "in.txt").read_bytes().upper())

    await harness.start()
    writer = asyncio.create_task(job_writes_output())
    a = assignment("w-dp", ("work",), batch_id=9, job_id=1,
                   input_files=[(f"gs://{DATA_BUCKET}/in.txt", "/io/in.txt")],
                   output_files=[("/io/out.txt", f"gs://{DATA_BUCKET}/out.txt")])
    await harness.assign(a)
    await asyncio.wait_for(writer, 10)
    mjc = mjcs(await harness.wait_for(lambda evs: len(mjcs(evs)) == 1))[0]
    await harness.shutdown()
    assert mjc.outcome == "Success", mjc.error
    assert await store.get(DATA_BUCKET, "out.txt") == b"INPUT BYTES"
    logs = {s: await read_step_log(store, SYSTEM_BUCKET, 9, 1, "a1", s) for s in ("input", "main", "output")}
    assert logs["main"] is not None and logs["main"].data == b"working\n"
    assert logs["input"] is not None and b"copied gs://user-data/in.txt -> /io/in.txt" in logs["input"].data
    assert logs["output"] is not None and b"-> gs://user-data/out.txt" in logs["output"].data
    status = json.loads(await store.get(SYSTEM_BUCKET, status_key(9, 1, "a1")))
    assert status["state"] == "succeeded" and set(status["timing"]) == {"input", "main", "output"}
    assert await store.exists(SYSTEM_BUCKET, resource_usage_key(9, 1, "a1", "main"))
    assert not (harness.state_dir / "spool" / "jobs" / "9").exists()  # shipped, so the spool is gone


async def test_a_missing_input_fails_the_job_without_running_it(memory_log, topics, tmp_path: Path,
                                                                store: InMemoryObjectStore) -> None:
    harness = _harness(memory_log, topics, tmp_path, store)
    await harness.start()
    await harness.assign(assignment("w-dp", ("true",), batch_id=9, job_id=2,
                                    input_files=[(f"gs://{DATA_BUCKET}/absent", "/io/x")]))
    mjc = mjcs(await harness.wait_for(lambda evs: len(mjcs(evs)) == 1))[0]
    await harness.shutdown()
    assert (mjc.outcome, mjc.failure_cause) == ("Failed", failures.INPUT_NOT_FOUND)
    assert mjc.error == f"input gs://{DATA_BUCKET}/absent not found"
    assert harness.runtime.created_specs == []


async def test_records_refused_by_the_store_are_shipped_when_it_is_back(memory_log, topics, tmp_path: Path,
                                                                        store: InMemoryObjectStore) -> None:
    harness = _harness(memory_log, topics, tmp_path, store)
    await harness.start()
    store.outage = True
    await harness.assign(assignment("w-dp", ("sh", "-c", "echo kept"), batch_id=9, job_id=3))
    mjc = mjcs(await harness.wait_for(lambda evs: len(mjcs(evs)) == 1))[0]
    assert mjc.outcome == "Success"  # the job's result does not wait for the store forever
    store.outage = False
    deadline = asyncio.get_running_loop().time() + 10
    while not await store.exists(SYSTEM_BUCKET, log_key(9, 3, "a1", "main")):
        assert asyncio.get_running_loop().time() < deadline, "the heartbeat never shipped the spool"
        await asyncio.sleep(0.05)
    await harness.shutdown()
    assert await store.get(SYSTEM_BUCKET, log_key(9, 3, "a1", "main")) == b"kept\n"


async def test_the_agent_endpoint_serves_running_logs_only_with_the_secret(store: InMemoryObjectStore,
                                                                           tmp_path: Path) -> None:
    records = AttemptRecords(store, SYSTEM_BUCKET, tmp_path / "spool")
    log = records.open_log(IDS, "main")
    log.append(b"0123456789")
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(records, "s3cret")),
                               base_url="http://agent")
    url = "/api/v1alpha/attempts/3/4/a1/log/main"
    try:
        assert (await client.get(url)).status_code == 401
        assert (await client.get(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        whole = await client.get(url, headers=auth)
        assert (whole.status_code, whole.content, whole.headers["X-Squall-Log-Size"]) == (200, b"0123456789", "10")
        assert (await client.get(url, params={"tail": 3}, headers=auth)).content == b"789"
        assert (await client.get(url, params={"start": 8}, headers=auth)).content == b"89"
        assert (await client.get("/api/v1alpha/attempts/3/4/a2/log/main", headers=auth)).status_code == 404
        assert (await client.get("/api/v1alpha/attempts/3/4/..%2F..%2Fetc/log/main", headers=auth)).status_code \
            in (400, 404)
    finally:
        await client.aclose()
        log.abandon()


async def test_a_slow_log_is_visible_from_the_spool_before_the_step_ends(memory_log, topics, tmp_path: Path,
                                                                        store: InMemoryObjectStore) -> None:
    def program(spec):  # type: ignore[no-untyped-def]
        return FakeProcess(steps=[(0.0, b"first line\n"), (1.0, b"second line\n")])

    harness = _harness(memory_log, topics, tmp_path, store, program=program)
    await harness.start()
    await harness.assign(assignment("w-dp", ("x",), batch_id=9, job_id=4))
    ids = AttemptIds(9, 4, "a1")
    deadline = asyncio.get_running_loop().time() + 5
    while (harness.records.read_spooled_log(ids, "main") or (b"", 0))[0] != b"first line\n":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)
    assert not await store.exists(SYSTEM_BUCKET, log_key(9, 4, "a1", "main"))  # not finished yet
    await harness.wait_for(lambda evs: len(mjcs(evs)) == 1)
    await harness.shutdown()
    assert await store.get(SYSTEM_BUCKET, log_key(9, 4, "a1", "main")) == b"first line\nsecond line\n"
