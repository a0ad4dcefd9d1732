"""The running squall, as a wheel a worker VM installs: built from this source tree, kept by content.

    release = publish_release(store, bucket="my-squall-bucket")      # builds (or reuses) and uploads
    release.url      # gs://my-squall-bucket/squall/releases/<sha256>/squall-0.1.0-py3-none-any.whl
    release.sha256   # what the VM checks before installing

A version number alone does not say which code runs (every build of a branch is 0.1.0), so a
release is named by the wheel's digest, and built from the source files' digest: the same source
reuses its wheel; changed source builds a new one. The control plane uploads it to its own bucket
through a `ReleaseStore`: google-cloud-storage in production (the object store adapter in
events/objectstore/ implements the two calls), a directory in tests.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SOURCE_ROOT = Path(__file__).resolve().parent.parent
# what the wheel is made of (pyproject.toml's packages), hashed to recognise an unchanged tree
SOURCE_PARTS = ("pyproject.toml", "events", "projections", "services", "worker", "deploy", "schemas")
RELEASE_PREFIX = "squall/releases"


class ReleaseError(RuntimeError):
    """The wheel could not be built or uploaded; the message says what to do."""


@dataclass(frozen=True)
class Release:
    url: str  # gs://bucket/squall/releases/<sha256>/<wheel file name>
    sha256: str
    wheel: Path  # the local file


class ReleaseStore(Protocol):
    """The two calls a release needs from the object store (events/objectstore/ provides them)."""

    def exists(self, bucket: str, name: str) -> bool: ...

    def upload_file(self, bucket: str, name: str, path: Path) -> None: ...


class DirectoryStore:
    """A ReleaseStore in a local directory (<root>/<bucket>/<name>): tests, and fake-GCS setups."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def exists(self, bucket: str, name: str) -> bool:
        return (self.root / bucket / name).is_file()

    def upload_file(self, bucket: str, name: str, path: Path) -> None:
        target = self.root / bucket / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def source_digest(root: Path = SOURCE_ROOT) -> str:
    """sha256 over every source file of the wheel (names and bytes), caches and builds excluded."""
    h = hashlib.sha256()
    for part in SOURCE_PARTS:
        base = root / part
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".pyo"):
                continue
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


def build_wheel(cache: Path, root: Path = SOURCE_ROOT) -> Path:
    """The wheel of the source tree at `root`, built once per source digest (under `cache`)."""
    if not (root / "pyproject.toml").is_file():
        raise ReleaseError(f"{root} is not a squall source tree (no pyproject.toml): this squall was installed "
                           "from a wheel; give that wheel to the autoscaler with --gce-wheel")
    out = cache / source_digest(root)
    built = sorted(out.glob("squall-*.whl"))
    if built:
        return built[-1]
    with tempfile.TemporaryDirectory(prefix="squall-wheel-") as tmp:
        # a copy: the build leaves build/ and *.egg-info behind, never in the source tree
        tree = Path(tmp) / "src"
        shutil.copytree(root, tree, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "build", "dist",
                                                                   "*.egg-info", ".mypy_cache", ".ruff_cache",
                                                                   ".pytest_cache", "tests", ".hypothesis"))
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
                               str(Path(tmp) / "dist"), str(tree)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ReleaseError(f"building the squall wheel failed (pip wheel {root}):\n{proc.stderr[-3000:]}")
        [wheel] = (Path(tmp) / "dist").glob("squall-*.whl")
        out.mkdir(parents=True, exist_ok=True)
        target = out / wheel.name
        shutil.copyfile(wheel, target)
    return target


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def publish_release(store: ReleaseStore, bucket: str, wheel: Path | None = None, cache: Path | None = None,
                    root: Path = SOURCE_ROOT) -> Release:
    """Upload the running squall's wheel (built from `root`, or the given one) unless already there."""
    if wheel is None:
        wheel = build_wheel(cache or Path.home() / ".cache" / "squall" / "wheels", root)
    digest = file_sha256(wheel)
    name = f"{RELEASE_PREFIX}/{digest}/{wheel.name}"
    if not store.exists(bucket, name):
        store.upload_file(bucket, name, wheel)
    return Release(url=f"gs://{bucket}/{name}", sha256=digest, wheel=wheel)


class GcsReleaseStore:
    """A ReleaseStore on Google Cloud Storage (google-cloud-storage, the VM's or the operator's
    credentials). Integration point: replaced by the events/objectstore adapter once it is merged;
    `endpoint` points it at a GCS-API server (fake-gcs-server) instead of Google."""

    def __init__(self, endpoint: str | None = None) -> None:
        try:
            from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:
            raise ReleaseError("uploading a release needs google-cloud-storage (pip install google-cloud-storage), "
                               "or publish the wheel yourself and pass --gce-wheel-url/--gce-wheel-sha256") from exc
        if endpoint:
            from google.auth.credentials import AnonymousCredentials

            self._client = storage.Client(credentials=AnonymousCredentials(), project="squall",
                                          client_options={"api_endpoint": endpoint})
        else:
            self._client = storage.Client()

    def exists(self, bucket: str, name: str) -> bool:
        return bool(self._client.bucket(bucket).blob(name).exists())

    def upload_file(self, bucket: str, name: str, path: Path) -> None:
        self._client.bucket(bucket).blob(name).upload_from_filename(str(path))
