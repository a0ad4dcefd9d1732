"""One contract for every ObjectStore adapter: the in-memory fake and GcsObjectStore (google-cloud-storage)
against a real GCS-API server (fake-gcs-server, started by tests/conftest.py from deploy/objectstore.py).

If a test passes on the fake but fails on the real adapter (or the reverse), the fake is lying and
the unit tests built on it are not to be trusted: fix the fake.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from events.objectstore import (
    InMemoryObjectStore,
    InvalidObjectName,
    ObjectNotFound,
    ObjectStore,
    StoreUnavailable,
)


@pytest.fixture(params=["memory", "gcs"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


@pytest.fixture
async def bucket(store: ObjectStore, bucket_name: str) -> str:
    await store.create_bucket(bucket_name)
    return bucket_name


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Failing(BaseHTTPRequestHandler):
    """Answers every request with 503 after a short pause (a store in trouble)."""

    delay_s = 0.0

    def _fail(self) -> None:
        time.sleep(self.delay_s)
        body = b'{"error": {"code": 503, "message": "backend unavailable"}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _fail

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()  # (a short poll: shutdown() waits out one)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def memory_in_outage() -> InMemoryObjectStore:
    memory = InMemoryObjectStore()
    await memory.create_bucket("down")
    memory.outage = True
    return memory


async def _gcs_at(endpoint: str) -> AsyncIterator[ObjectStore]:
    from events.objectstore.gcs import GcsObjectStore

    gcs = GcsObjectStore(endpoint=endpoint, retry_deadline_s=1.5, timeout_s=5)
    try:
        yield gcs
    finally:
        await gcs.close()


@pytest.fixture
async def gcs_refused() -> AsyncIterator[ObjectStore]:
    async for s in _gcs_at(f"http://127.0.0.1:{_free_port()}"):  # nothing listens there
        yield s


@pytest.fixture
async def gcs_503(failing_endpoint: str) -> AsyncIterator[ObjectStore]:
    async for s in _gcs_at(failing_endpoint):
        yield s


@pytest.fixture(params=["memory_in_outage", "gcs_refused", "gcs_503"])
def broken_store(request: pytest.FixtureRequest) -> ObjectStore:
    """A store in an outage: the fake's switch; nothing listening; a server answering 503."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


async def test_put_then_get_returns_the_bytes_and_put_replaces(store: ObjectStore, bucket: str) -> None:
    await store.put(bucket, "a/b.txt", b"first")
    first = await store.stat(bucket, "a/b.txt")
    assert await store.get(bucket, "a/b.txt") == b"first"
    await store.put(bucket, "a/b.txt", b"second, longer")
    assert await store.get(bucket, "a/b.txt") == b"second, longer"
    second = await store.stat(bucket, "a/b.txt")
    assert (first.size, second.size) == (5, 14)
    assert second.generation != first.generation


async def test_empty_objects_and_binary_bytes_survive(store: ObjectStore, bucket: str) -> None:
    blob = bytes(range(256)) * 3
    await store.put(bucket, "bin", blob)
    await store.put(bucket, "empty", b"")
    assert await store.get(bucket, "bin") == blob
    assert await store.get(bucket, "empty") == b""
    assert (await store.stat(bucket, "empty")).size == 0


async def test_missing_objects_and_buckets_raise_object_not_found(store: ObjectStore, bucket: str) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get(bucket, "nope")
    with pytest.raises(ObjectNotFound):
        await store.stat(bucket, "nope")
    with pytest.raises(ObjectNotFound):
        await store.get_range(bucket, "nope", 0, 10)
    with pytest.raises(ObjectNotFound):
        await store.get("no-such-bucket-squall-test", "x")
    with pytest.raises(ObjectNotFound):
        await store.put("no-such-bucket-squall-test", "x", b"x")
    assert await store.exists(bucket, "nope") is False
    assert await store.exists("no-such-bucket-squall-test", "x") is False


async def test_a_buckets_location_is_gcs_default_and_a_missing_bucket_has_none(store: ObjectStore,
                                                                                 bucket: str) -> None:
    """GCS's default location (fake-gcs-server reports it for every bucket); data locality reads it."""
    assert await store.bucket_location(bucket) == "US-CENTRAL1"
    with pytest.raises(ObjectNotFound):
        await store.bucket_location(f"{bucket}-absent")


async def test_exists_and_delete_and_deleting_twice_is_fine(store: ObjectStore, bucket: str) -> None:
    await store.put(bucket, "k", b"v")
    assert await store.exists(bucket, "k") is True
    await store.delete(bucket, "k")
    assert await store.exists(bucket, "k") is False
    await store.delete(bucket, "k")
    with pytest.raises(ObjectNotFound):
        await store.get(bucket, "k")


async def test_ranged_reads_are_slices_and_tails(store: ObjectStore, bucket: str) -> None:
    data = b"0123456789"
    await store.put(bucket, "log", data)
    assert await store.get_range(bucket, "log", 2, 5) == data[2:5]
    assert await store.get_range(bucket, "log", 7) == data[7:]
    assert await store.get_range(bucket, "log", 7, 100) == data[7:]  # clipped to the size
    assert await store.get_range(bucket, "log", 10) == b""  # starts at the end
    assert await store.get_range(bucket, "log", 50, 60) == b""  # past the end
    assert await store.get_range(bucket, "log", 4, 4) == b""
    assert await store.get_range(bucket, "log", -3) == b"789"  # a tail
    assert await store.get_range(bucket, "log", -100) == data  # a tail longer than the object
    await store.put(bucket, "empty", b"")
    assert await store.get_range(bucket, "empty", 0) == b""


async def test_list_is_by_prefix_sorted_and_not_a_directory_walk(store: ObjectStore, bucket: str) -> None:
    names = ["a/2", "a/1", "a/sub/3", "ab", "b"]
    for n in names:
        await store.put(bucket, n, n.encode())
    listed = await store.list(bucket, "a/")
    assert [o.key for o in listed] == ["a/1", "a/2", "a/sub/3"]
    assert [o.size for o in listed] == [3, 3, 7]
    assert [o.key for o in await store.list(bucket)] == sorted(names)
    assert await store.list(bucket, "zzz") == []
    with pytest.raises(ObjectNotFound):
        await store.list("no-such-bucket-squall-test", "")


async def test_stream_yields_the_object_in_bounded_chunks(store: ObjectStore, bucket: str) -> None:
    data = os.urandom(300_000)
    await store.put(bucket, "big", data)
    chunks = [c async for c in store.stream(bucket, "big", chunk_bytes=64 * 1024)]
    assert b"".join(chunks) == data
    assert len(chunks) == 5 and all(len(c) <= 64 * 1024 for c in chunks)
    with pytest.raises(ObjectNotFound):
        async for _ in store.stream(bucket, "nope"):
            pass


async def test_files_upload_and_download_whole(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(20 * 1024 * 1024 + 7))  # past the library's resumable-upload threshold
    await store.upload_file(bucket, "files/big.bin", src)
    dst = tmp_path / "out" / "big.bin"
    dst.parent.mkdir()
    dst.write_bytes(b"old content")
    await store.download_file(bucket, "files/big.bin", dst)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert sorted(os.listdir(dst.parent)) == ["big.bin"]  # no temporary left behind


async def test_a_failed_download_leaves_no_file(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        await store.download_file(bucket, "nope", tmp_path / "x")
    assert os.listdir(tmp_path) == []


async def test_upload_refuses_symlinks_and_directories(store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(OSError):
        await store.upload_file(bucket, "leak", tmp_path / "link")
    with pytest.raises(OSError):
        await store.upload_file(bucket, "dir", tmp_path)
    assert await store.exists(bucket, "leak") is False


async def test_invalid_names_are_refused(store: ObjectStore, bucket: str) -> None:
    with pytest.raises(InvalidObjectName):
        await store.create_bucket("Not_A_Bucket!")
    with pytest.raises(InvalidObjectName):
        await store.put(bucket, "", b"x")
    with pytest.raises(InvalidObjectName):
        await store.put(bucket, "a\nb", b"x")


async def test_create_bucket_twice_keeps_its_objects(store: ObjectStore, bucket: str) -> None:
    await store.put(bucket, "k", b"v")
    await store.create_bucket(bucket)
    assert await store.get(bucket, "k") == b"v"


async def test_many_concurrent_writes_all_land(store: ObjectStore, bucket: str) -> None:
    await asyncio.gather(*(store.put(bucket, f"many/{i:03d}", str(i).encode()) for i in range(60)))
    listed = await store.list(bucket, "many/")
    assert [o.key for o in listed] == [f"many/{i:03d}" for i in range(60)]
    assert await asyncio.gather(*(store.get(bucket, o.key) for o in listed[:5])) == [b"0", b"1", b"2", b"3", b"4"]


async def test_an_unreachable_or_failing_store_raises_store_unavailable(broken_store: ObjectStore) -> None:
    for op in (broken_store.get("down", "k"), broken_store.put("down", "k", b"x"),
               broken_store.list("down", ""), broken_store.stat("down", "k")):
        with pytest.raises(StoreUnavailable):
            await op


async def test_gcs_calls_do_not_block_the_event_loop(failing_endpoint: str) -> None:
    from events.objectstore.gcs import GcsObjectStore

    _Failing.delay_s = 0.3
    store = GcsObjectStore(endpoint=failing_endpoint, retry_deadline_s=1.0)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    t = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get("down", "k")
        elapsed = time.monotonic() - started
    finally:
        t.cancel()
        _Failing.delay_s = 0.0
        await store.close()
    assert elapsed >= 0.3
    # a blocked loop would show one gap as long as the call; a busy machine only delays ticks a little
    longest_gap = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
    assert longest_gap < 0.25, f"the loop stalled for {longest_gap:.2f} s during a {elapsed:.2f} s call"
