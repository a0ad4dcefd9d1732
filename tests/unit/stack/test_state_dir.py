"""The state directory is its owner's alone (0700), a home made by an older squall included."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deploy import stack
from deploy.state_dir import STATE_SUBDIRS, secure_state_dir
from services.front.stack_user import ensure_stack_user


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_home_and_its_state_directories_are_0700(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    old_umask = os.umask(0o022)
    try:
        secure_state_dir(home)
    finally:
        os.umask(old_umask)
    assert _mode(home) == 0o700
    assert {p.name: _mode(p) for p in home.iterdir()} == {name: 0o700 for name in STATE_SUBDIRS}


def _old_home(home: Path) -> None:
    """A home as squall left it before: blobs/ 0755 with a job's log in it, stack.json, pools.yaml."""
    (home / "blobs" / "batch-1").mkdir(parents=True)
    (home / "blobs" / "batch-1" / "main.log").write_text("secret output\n")
    (home / "logs").mkdir()
    (home / "pools.yaml").write_text("pools: []\n")
    for path in (home, home / "blobs", home / "logs"):
        os.chmod(path, 0o755)
    os.chmod(home / "pools.yaml", 0o644)


def test_an_existing_home_is_tightened(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _old_home(home)
    secure_state_dir(home)
    assert _mode(home) == _mode(home / "blobs") == _mode(home / "logs") == 0o700
    assert _mode(home / "pools.yaml") == 0o600
    assert (home / "blobs" / "batch-1" / "main.log").read_text() == "secret output\n"


def test_squall_up_secures_an_existing_home_before_anything_else(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    _old_home(home)
    # an unreachable database stops `up` right after its first step; the home must be secured by then
    with pytest.raises(Exception):  # noqa: B017  (whatever psycopg raises for a closed port)
        stack.up(home, bootstrap="127.0.0.1:1", database_url="postgresql://nobody@127.0.0.1:1/none",
                 say=lambda m: None, timeout_s=1, ensure_user=ensure_stack_user)
    assert _mode(home) == _mode(home / "blobs") == 0o700
