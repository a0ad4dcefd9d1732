"""The state directory (SQUALL_HOME) and what squall keeps in it are readable by their owner only.

Job logs (blobs/), the stack's database and broker data, process logs and stack.json (which holds a
bearer token) must not be readable by other local Unix users. `secure_state_dir` makes the home
0700, creates the state directories squall fills later 0700 as well, and tightens what an older
squall left group- or world-readable (directories 0700, files 0600) at the top of an existing home;
everything deeper is behind those directories. `squall up` calls it first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# what squall keeps directly under its home (created now, so they never exist with a wider mode)
STATE_SUBDIRS = ("blobs", "instances", "kafka", "logs", "postgres", "run")


def secure_state_dir(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    for name in STATE_SUBDIRS:
        (home / name).mkdir(mode=0o700, exist_ok=True)
    for child in home.iterdir():
        mode = child.lstat().st_mode
        if stat.S_ISDIR(mode):
            os.chmod(child, 0o700)
        elif stat.S_ISREG(mode) and mode & 0o077:
            os.chmod(child, 0o600)
