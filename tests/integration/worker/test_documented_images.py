"""Every local image the documentation names exists after deploy/podman/setup.sh, under the very
name it is written with (`localhost/debian-python3` means :latest to podman)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.podman

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("*/**/README.md"))]
LOCAL_IMAGE = re.compile(r"\blocalhost/[a-z0-9][a-z0-9._/-]*(?::[\w][\w.-]*)?")


def documented_local_images() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        if ".venv" in doc.parts or not doc.is_file():
            continue
        for name in LOCAL_IMAGE.findall(doc.read_text()):
            found.setdefault(name.rstrip("."), []).append(str(doc.relative_to(REPO)))
    return found


def test_the_docs_name_local_images_at_all() -> None:
    assert {"localhost/busybox", "localhost/debian-python3"} <= set(documented_local_images())


def test_every_local_image_the_docs_name_exists(podman_socket: Path) -> None:
    missing = {name: docs for name, docs in documented_local_images().items()
               if subprocess.run(["podman", "image", "exists", name], capture_output=True).returncode != 0}
    assert not missing, f"images named in the docs that podman does not have: {missing}"
