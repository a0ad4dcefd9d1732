"""Small pure pieces of the worker: log decoding, object keys, io path mapping, pull errors, usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.objectstore.layout import (
    agent_secret_key,
    chunk_offset,
    log_chunk_key,
    log_key,
    resource_usage_key,
    status_key,
    user_key_key,
)
from worker.k8s_log import K8sFileLogDecoder
from worker.podman_api import parse_time_ms
from worker.podman_errors import classify_pull_error
from worker.runtime import ImageNotFound, ImagePullFailed, UsageSample
from worker.scratch import GIB, scratch_quota_bytes
from worker.storage import StorageError, host_path_in_io
from worker.usage import UsageSeries, next_interval


def test_k8s_file_log_decodes_full_and_partial_lines_across_chunks() -> None:
    d = K8sFileLogDecoder()
    data = (b"2026-01-01T00:00:00.1+00:00 stdout F hello\n"
            b"2026-01-01T00:00:00.2+00:00 stderr P no newline \n"
            b"2026-01-01T00:00:00.3+00:00 stderr F yet\n"
            b"2026-01-01T00:00:00.4+00:00 stdout F \n")
    out = d.feed(data[:30]) + d.feed(data[30:70]) + d.feed(data[70:]) + d.flush()
    assert out == b"hello\nno newline yet\n\n"


def test_object_keys_follow_hails_layout_under_jobs() -> None:
    assert log_key(1, 2, "x9", "main") == "jobs/1/2/x9/main/log"
    assert resource_usage_key(1, 2, "x9", "input") == "jobs/1/2/x9/input/resource_usage"
    assert status_key(1, 2, "x9") == "jobs/1/2/x9/status.json"
    chunk = log_chunk_key(1, 2, "x9", "main", 4096)
    assert chunk == "jobs/1/2/x9/main/log.chunks/000000000004096" and chunk_offset(chunk) == 4096
    assert chunk_offset("jobs/1/2/x9/main/log") is None
    assert agent_secret_key("w-1") == "instances/w-1/agent-secret"
    assert user_key_key("alice") == "users/alice/gcs-key.json"
    for bad in ("../x", "a/b", "", ".."):
        with pytest.raises(ValueError):
            log_key(1, 2, bad, "main")
    with pytest.raises(ValueError):
        log_key(1, 2, "x", "setup")
    with pytest.raises(ValueError):
        user_key_key("../admin")


def test_io_paths_cannot_escape(tmp_path: Path) -> None:
    io = tmp_path / "io"
    io.mkdir()
    assert host_path_in_io(io, "/io/a/b.txt") == io / "a" / "b.txt"
    assert host_path_in_io(io, "rel.txt") == io / "rel.txt"
    (io / "link").symlink_to("/etc")
    for bad in ("/etc/passwd", "/io/../etc/passwd", "/io/link/passwd"):
        with pytest.raises(StorageError):
            host_path_in_io(io, bad)


@pytest.mark.parametrize(("message", "kind"), [
    ("initializing source docker://x: reading manifest 1 in docker.io/library/x: manifest unknown", ImageNotFound),
    ("short-name \"ubuntu\" did not resolve to an alias and no unqualified-search registries are defined",
     ImageNotFound),
    ("requested access to the resource is denied", ImageNotFound),
    ("pinging container registry r: Get \"https://r/v2/\": dial tcp: lookup r: no such host", ImagePullFailed),
    ("received unexpected HTTP status: 503 Service Unavailable", ImagePullFailed),
    ("something nobody has seen before", ImagePullFailed),
])
def test_pull_errors_are_final_only_when_the_image_does_not_exist(message: str, kind: type) -> None:
    assert isinstance(classify_pull_error("img", message), kind)


def test_podman_times_parse_to_epoch_ms() -> None:
    assert parse_time_ms("2026-11-25T13:45:12.123456789Z") == 1795614312123
    assert parse_time_ms("2026-11-25T13:45:12.5+01:00") == 1795610712500
    assert parse_time_ms("0001-01-01T00:00:00Z") is None


def test_scratch_quota_is_hails_rule() -> None:
    five = 5 * GIB
    assert scratch_quota_bytes(0, 1000, five, five) == five
    assert scratch_quota_bytes(0, 250, five, five) == five // 4
    assert scratch_quota_bytes(10, 4000, five, five) == 15 * GIB


def test_usage_series_derives_cpu_cores_and_maxima() -> None:
    s = UsageSeries()
    s.add(1000, UsageSample(cpu_usage_ns=0, memory_bytes=10), io_bytes=5)
    s.add(2000, UsageSample(cpu_usage_ns=500_000_000, memory_bytes=30), io_bytes=2)
    s.add(3000, None, io_bytes=9)
    assert s.rows == [(1000, 10, 0.0, 5), (2000, 30, 0.5, 2)]
    assert (s.max_memory_bytes, s.max_io_bytes, s.cpu_ns_total) == (30, 9, 500_000_000)
    assert next_interval(1.0, 0.1) == 0.1 and next_interval(6.0, 0.1) == 0.2 and next_interval(60, 5.0) == 5.0
