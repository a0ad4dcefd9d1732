"""Logs and resource usage from the blob store: tails, absent files, the worker's usage format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.webui.blobs import (
    UsageFormatError,
    UsageSample,
    decode_resource_usage,
    read_log,
    read_resource_usage,
)
from worker.blobs import log_path, resource_usage_path
from worker.runtime import UsageSample as RuntimeSample
from worker.usage import UsageSeries


def write_log(root: Path, text: bytes, step: str = "main") -> None:
    path = log_path(root, 7, 3, "att", step)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text)


def test_a_log_is_read_whole_or_by_its_tail(tmp_path: Path) -> None:
    write_log(tmp_path, b"line 1\nline 2\n")
    whole = read_log(tmp_path, 7, 3, "att", "main")
    assert whole is not None and whole.text == "line 1\nline 2\n" and not whole.truncated and whole.size == 14
    tail = read_log(tmp_path, 7, 3, "att", "main", tail_bytes=7)
    assert tail is not None and tail.text == "line 2\n" and tail.truncated


def test_a_tail_that_splits_a_character_still_renders(tmp_path: Path) -> None:
    write_log(tmp_path, "ü".encode() * 3)
    tail = read_log(tmp_path, 7, 3, "att", "main", tail_bytes=3)
    assert tail is not None and tail.text == "\ufffdü"


def test_absent_logs_and_usage_are_none(tmp_path: Path) -> None:
    assert read_log(tmp_path, 7, 3, "att", "input") is None
    assert read_resource_usage(tmp_path, 7, 3, "att", "main") is None


@pytest.mark.parametrize(("attempt_id", "step"), [("att", "../etc"), ("..", "main"), ("a/b", "main")])
def test_paths_outside_the_layout_are_refused(tmp_path: Path, attempt_id: str, step: str) -> None:
    with pytest.raises(ValueError):
        read_log(tmp_path, 7, 3, attempt_id, step)


def test_reads_what_the_worker_writes(tmp_path: Path) -> None:
    series = UsageSeries()
    series.add(1_000, RuntimeSample(cpu_usage_ns=0, memory_bytes=10 << 20), io_bytes=0)
    series.add(2_000, RuntimeSample(cpu_usage_ns=500_000_000, memory_bytes=30 << 20), io_bytes=4096)
    path = resource_usage_path(tmp_path, 7, 3, "att", "main")
    path.parent.mkdir(parents=True)
    path.write_bytes(series.to_json())
    assert read_resource_usage(tmp_path, 7, 3, "att", "main") == [
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
