"""Everything the front end's routes need, built once at start-up and passed to `create_app`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from events.publisher import Publisher
from services.front.auth import TokenCache
from services.front.reads import Reads
from services.front.rerun import Reruns
from services.front.specs import SpecRules
from services.front.submission import Submissions

MAX_BODY_BYTES = 8 * 1024 * 1024  # Hail's limit


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def default_producer() -> str:
    return f"front/{socket.gethostname()}:{os.getpid()}"


@dataclass
class FrontDeps:
    pool: AsyncConnectionPool
    publisher: Publisher
    blob_root: Path
    rules: SpecRules = field(default_factory=SpecRules)
    default_region: str = "local"
    cloud: str = "local"
    clock: Callable[[], int] = wall_clock_ms
    producer: str = field(default_factory=default_producer)
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        self.submissions = Submissions(self.pool, self.publisher, self.clock, self.producer)
        self.reruns = Reruns(self.pool, self.publisher, self.clock, self.producer, self.rules)
        self.reads = Reads(self.pool)
        self.tokens = TokenCache(self.pool)
