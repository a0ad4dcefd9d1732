"""Logs and resource usage from the blob store: tails, absent files, Hail's usage format."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from services.webui.blobs import (
    UsageFormatError,
    UsageSample,
    decode_resource_usage,
    encode_resource_usage,
    log_path,
    read_log,
    read_resource_usage,
    resource_usage_path,
)


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


def test_unknown_steps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown step"):
        read_log(tmp_path, 7, 3, "att", "../etc")


def test_usage_round_trips_and_ignores_a_half_written_record(tmp_path: Path) -> None:
    samples = [UsageSample(time_ms=1_000 * i, memory_bytes=i << 20, cpu_cores=0.25 * i, storage_bytes=4096,
                           upload_bytes_per_s=1.5, download_bytes_per_s=2.5) for i in range(3)]
    data = encode_resource_usage(samples)
    assert decode_resource_usage(data + b"\x00" * 10) == samples
    path = resource_usage_path(tmp_path, 7, 3, "att", "main")
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert read_resource_usage(tmp_path, 7, 3, "att", "main") == samples


def test_usage_in_hails_layout_sums_both_storage_columns() -> None:
    record = struct.pack(">qqdqqdd", 5, 100, 150.0, 10, 20, 0.0, 0.0)
    (sample,) = decode_resource_usage(struct.pack(">q", 2) + record)
    assert sample.cpu_cores == 1.5 and sample.storage_bytes == 30


def test_other_usage_versions_are_refused() -> None:
    with pytest.raises(UsageFormatError, match="version 1"):
        decode_resource_usage(struct.pack(">q", 1))
    with pytest.raises(UsageFormatError, match="shorter"):
        decode_resource_usage(b"\x00\x01")
    assert decode_resource_usage(b"") == []
