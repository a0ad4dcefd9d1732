"""Everything the front end's routes need, built once at start-up and passed to `create_app`."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from events.publisher import Publisher
from projections.cost import PriceTable, Pricing
from services.callback_policy import Resolver, system_resolver
from services.front.auth import TokenAuth
from services.front.job_files import FileAccess
from services.front.offload import CpuLane
from services.front.reads import Reads
from services.front.rerun import Reruns
from services.front.specs import SpecRules
from services.front.submission import Submissions
from services.jobdata import JobData

MAX_BODY_BYTES = 8 * 1024 * 1024  # Hail's limit


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def default_producer() -> str:
    return f"front/{socket.gethostname()}:{os.getpid()}"


@dataclass
class FrontDeps:
    pool: AsyncConnectionPool
    publisher: Publisher
    job_data: JobData  # logs, status and usage: squall's bucket, and running attempts' agents
    file_access: FileAccess = field(default_factory=FileAccess)  # which buckets jobs may name
    rules: SpecRules = field(default_factory=SpecRules)
    default_region: str = "local"
    cloud: str = "local"
    clock: Callable[[], int] = wall_clock_ms
    producer: str = field(default_factory=default_producer)
    max_body_bytes: int = MAX_BODY_BYTES
    cpu: CpuLane = field(default_factory=CpuLane)
    resolver: Resolver = system_resolver  # host names of callback URLs (tests give a fake DNS)
    prices: PriceTable = field(default_factory=PriceTable)  # the read model's (estimates price as it bills)

    def __post_init__(self) -> None:
        self.pricing = Pricing(self.prices)
        self.submissions = Submissions(self.pool, self.publisher, self.clock, self.producer, self.cpu,
                                       self.file_access, self.rules.pools)
        self.reruns = Reruns(self.pool, self.publisher, self.clock, self.producer, self.rules)
        self.reads = Reads(self.pool)
        self.tokens = TokenAuth(self.pool)
