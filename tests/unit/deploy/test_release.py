"""Releases: named by the wheel's digest, uploaded once, rebuilt only when the source changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from deploy.release import (
    RELEASE_PREFIX,
    DirectoryStore,
    ReleaseError,
    build_wheel,
    publish_release,
    source_digest,
)

REPO = Path(__file__).resolve().parents[3]


def test_a_release_is_named_by_its_digest_and_uploaded_once(tmp_path: Path) -> None:
    wheel = tmp_path / "squall-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"pretend wheel")
    store = DirectoryStore(tmp_path / "gcs")
    first = publish_release(store, "ctl", wheel=wheel)
    assert first.url == f"gs://ctl/{RELEASE_PREFIX}/{first.sha256}/squall-0.1.0-py3-none-any.whl"
    uploaded = tmp_path / "gcs" / "ctl" / RELEASE_PREFIX / first.sha256 / wheel.name
    assert uploaded.read_bytes() == b"pretend wheel"
    uploaded.write_bytes(b"marker")  # a second publish of the same wheel uploads nothing
    assert publish_release(store, "ctl", wheel=wheel) == first and uploaded.read_bytes() == b"marker"
    wheel.write_bytes(b"another build")
    assert publish_release(store, "ctl", wheel=wheel).sha256 != first.sha256


def test_the_source_digest_follows_the_source_and_ignores_caches(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    for part in ("events", "schemas"):
        shutil.copytree(REPO / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    before = source_digest(tree)
    (tree / "events" / "__pycache__").mkdir(exist_ok=True)
    (tree / "events" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    assert source_digest(tree) == before
    (tree / "events" / "topics.py").write_text((tree / "events" / "topics.py").read_text() + "\n# changed\n")
    assert source_digest(tree) != before


def test_an_installed_squall_without_its_source_must_be_given_its_wheel(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="--gce-wheel"):
        build_wheel(tmp_path / "cache", root=tmp_path)
