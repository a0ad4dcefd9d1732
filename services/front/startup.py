"""What the front end's process runs on (the process itself: services/front/__main__.py): its
migrations (the read model's and its own), its dependencies connected to Kafka, PostgreSQL and the
object store (`running_deps`), and whether a listening address is loopback only.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from psycopg_pool import AsyncConnectionPool

from events.objectstore import ObjectStore
from events.process.config import ServiceConfig
from events.publisher import Publisher
from events.service_log import open_service_log
from projections.cost import PriceTable
from projections.db import READMODEL_MIGRATIONS, migrate
from services.front.front_deps import FrontDeps
from services.front.job_files import FileAccess
from services.front.locality import BucketLocations
from services.front.specs import SpecRules
from services.jobdata import AgentLogs, JobData

FRONT_MIGRATIONS = Path(__file__).with_name("migrations")


def apply_migrations(database_url: str) -> list[str]:
    """The read model's and the front's tables (the front reads both)."""
    return migrate(database_url, [READMODEL_MIGRATIONS, FRONT_MIGRATIONS])


def job_data_for(config: ServiceConfig, store: ObjectStore) -> JobData:
    return JobData(store, config.system_bucket, AgentLogs(store, config.system_bucket))


def file_access_for(config: ServiceConfig, store: ObjectStore, locality: str = "refuse") -> FileAccess:
    # real GCS: users copy with their own keys, which the front end publishes for the workers
    return FileAccess(config.system_bucket, store if config.storage_endpoint is None else None,
                      locations=BucketLocations(store), locality=locality)


@asynccontextmanager
async def running_deps(config: ServiceConfig, rules: SpecRules, pool_size: int = 10,
                       store: ObjectStore | None = None, prices: PriceTable | None = None) -> AsyncIterator[FrontDeps]:
    await asyncio.to_thread(apply_migrations, config.database_url)
    log = await open_service_log(config.bootstrap_servers, config.topics, "front", client_id="squall-front",
                                 security=config.kafka_security)
    pool = AsyncConnectionPool(config.database_url, min_size=1, max_size=pool_size, open=False)
    store = store or config.object_store()
    job_data = job_data_for(config, store)
    try:
        await pool.open(wait=True)
        yield FrontDeps(pool=pool, publisher=Publisher(log, config.topics), job_data=job_data,
                        file_access=file_access_for(config, store, rules.data_locality), rules=rules,
                        default_region=rules.supported_regions[0], prices=prices or PriceTable())
    finally:
        await job_data.close()
        await pool.close()
        await log.close()


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only (/metrics then needs no token)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
