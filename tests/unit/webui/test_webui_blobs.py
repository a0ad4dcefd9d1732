"""Logs and resource usage read through JobData from squall's bucket: tails, absent objects, the
worker's usage format (over the in-memory store, which passes the same contract suite as GCS)."""

from __future__ import annotations

import json

import pytest

from events.objectstore import InMemoryObjectStore
from events.objectstore.layout import log_key, resource_usage_key
from services.jobdata import JobData
from services.webui.blobs import (
    UsageFormatError,
    UsageSample,
    decode_resource_usage,
    read_log,
    read_resource_usage,
)
from worker.runtime import UsageSample as RuntimeSample
from worker.usage import UsageSeries

BUCKET = "squall-system"


@pytest.fixture
async def data() -> JobData:
    store = InMemoryObjectStore()
    await store.create_bucket(BUCKET)
    return JobData(store, BUCKET)


async def write_log(data: JobData, text: bytes, step: str = "main") -> None:
    await data.store.put(BUCKET, log_key(7, 3, "att", step), text)


async def test_a_log_is_read_whole_or_by_its_tail(data: JobData) -> None:
    await write_log(data, b"line 1\nline 2\n")
    whole = await read_log(data, 7, 3, "att", "main", tail_bytes=None)
    assert whole is not None and whole.text == "line 1\nline 2\n" and not whole.truncated and whole.size == 14
    tail = await read_log(data, 7, 3, "att", "main", tail_bytes=7)
    assert tail is not None and tail.text == "line 2\n" and tail.truncated


async def test_a_tail_that_splits_a_character_still_renders(data: JobData) -> None:
    await write_log(data, "ü".encode() * 3)
    tail = await read_log(data, 7, 3, "att", "main", tail_bytes=3)
    assert tail is not None and tail.text == "\ufffdü"


async def test_absent_logs_and_usage_are_none(data: JobData) -> None:
    assert await read_log(data, 7, 3, "att", "input") is None
    assert await read_resource_usage(data, 7, 3, "att", "main") is None


@pytest.mark.parametrize(("attempt_id", "step"), [("att", "../etc"), ("..", "main"), ("a/b", "main")])
async def test_names_outside_the_layout_are_refused(data: JobData, attempt_id: str, step: str) -> None:
    with pytest.raises(ValueError):
        await read_log(data, 7, 3, attempt_id, step)


async def test_reads_what_the_worker_writes(data: JobData) -> None:
    series = UsageSeries()
    series.add(1_000, RuntimeSample(cpu_usage_ns=0, memory_bytes=10 << 20), io_bytes=0)
    series.add(2_000, RuntimeSample(cpu_usage_ns=500_000_000, memory_bytes=30 << 20), io_bytes=4096)
    await data.store.put(BUCKET, resource_usage_key(7, 3, "att", "main"), series.to_json())
    assert await read_resource_usage(data, 7, 3, "att", "main") == [
        UsageSample(time_ms=1_000, memory_bytes=10 << 20, cpu_cores=0.0, storage_bytes=0),
        UsageSample(time_ms=2_000, memory_bytes=30 << 20, cpu_cores=0.5, storage_bytes=4096),
    ]


def test_columns_are_found_by_name() -> None:
    doc = {"columns": ["cpu_usage", "time_msecs", "new_column"], "index": [0], "data": [[1.5, 42, "x"]]}
    assert decode_resource_usage(json.dumps(doc).encode()) == [
        UsageSample(time_ms=42, memory_bytes=0, cpu_cores=1.5, storage_bytes=0)]


@pytest.mark.parametrize(("data", "message"), [
    (b"\x00\x00", "not a split-orientation JSON table"),
    (b'{"columns": ["memory_in_bytes"], "data": []}', "no time_msecs column"),
    (b'{"columns": ["time_msecs", "cpu_usage"], "data": [[1]]}', "row 0 does not fit"),
])
def test_malformed_usage_is_named(data: bytes, message: str) -> None:
    with pytest.raises(UsageFormatError, match=message):
        decode_resource_usage(data)
