"""Run the front end under uvicorn against a real Kafka and PostgreSQL.

    python -m services.front --host 127.0.0.1 --port 8000 --bootstrap 127.0.0.1:9092 \
        --database-url postgresql://... [--topic-prefix squall.] [--home ~/.squall]

At start-up it applies the read-model and front migrations (idempotent), creates the topics
that are missing, and connects the producer (acks=all, idempotent). While it serves, a background
task cancels the running batches of billing projects over their limit (services/front/billing_loop.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from events.objectstore import ObjectStore
from events.publisher import Publisher
from events.service_log import open_service_log
from projections.cost import PriceTable, PriceTableError
from projections.db import READMODEL_MIGRATIONS, migrate
from services import callback_policy
from services.autoscaler.pools import PoolConfigError, load_pools
from services.config import ServiceConfig, add_arguments, from_args
from services.front.app import create_app
from services.front.billing_loop import INTERVAL_S as BILLING_INTERVAL_S
from services.front.billing_loop import run_billing_limit_loop
from services.front.deps import FrontDeps
from services.front.job_files import FileAccess
from services.front.offload import tune_gc_for_requests
from services.front.specs import SpecRules
from services.jobdata import AgentLogs, JobData

FRONT_MIGRATIONS = Path(__file__).with_name("migrations")


def apply_migrations(database_url: str) -> list[str]:
    """The read model's and the front's tables (the front reads both)."""
    return migrate(database_url, [READMODEL_MIGRATIONS, FRONT_MIGRATIONS])


def job_data_for(config: ServiceConfig, store: ObjectStore) -> JobData:
    return JobData(store, config.system_bucket, AgentLogs(store, config.system_bucket))


def file_access_for(config: ServiceConfig, store: ObjectStore) -> FileAccess:
    # real GCS: users copy with their own keys, which the front end publishes for the workers
    return FileAccess(config.system_bucket, store if config.storage_endpoint is None else None)


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
                        file_access=file_access_for(config, store), rules=rules,
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


def build_app(config: ServiceConfig, rules: SpecRules, *, metrics_need_token: bool = False,
              prices: PriceTable | None = None, billing_interval_s: float = BILLING_INTERVAL_S) -> FastAPI:
    """An app whose lifespan connects to Kafka and PostgreSQL (for uvicorn), with the web UI at /ui."""
    import httpx

    from services.webui.app import close_ui, create_ui

    app = create_app(deps=None, metrics=True, metrics_need_token=metrics_need_token)  # type: ignore[arg-type]
    store = config.object_store()  # one client (and thread pool) for the API and the UI
    # the UI calls this same API in-process (cancel button), with the signed-in user's token
    ui = create_ui(config.database_url, job_data_for(config, store), api_transport=httpx.ASGITransport(app=app))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_deps(config, rules, store=store, prices=prices) as deps:
            app.state.deps = deps
            tune_gc_for_requests()  # start-up's heap is frozen: no collection stalls requests over it
            # Hail's billing-limit loop (see services/front/billing_loop.py for why it lives here)
            stop = asyncio.Event()
            billing = asyncio.create_task(run_billing_limit_loop(deps.pool, deps.submissions, stop=stop,
                                                                 interval_s=billing_interval_s),
                                          name="billing-limit-loop")
            try:
                yield
            finally:
                stop.set()
                with contextlib.suppress(TimeoutError):  # a pass stuck on the database is cancelled
                    await asyncio.wait_for(billing, 10)
                await close_ui(ui)  # Starlette runs no lifespan of a mounted app
                await store.close()

    app.router.lifespan_context = lifespan
    app.mount("/ui", ui)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.front", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--regions", default="local",
                        help="comma-separated supported regions; the first is the default region")
    parser.add_argument("--pools", type=Path, default=None,
                        help="the autoscaler's pools YAML: a job no worker of them can hold is refused "
                             "(default: the six standard pools)")
    parser.add_argument("--prices", type=Path, default=None,
                        help="the read model's YAML price table (projections/cost.py), for estimates")
    parser.add_argument("--billing-loop-interval", type=float, default=BILLING_INTERVAL_S,
                        help="seconds between passes that cancel the running batches of projects over their limit")
    add_arguments(parser)
    callback_policy.add_arguments(parser)
    args = parser.parse_args(argv)
    config = from_args(args)
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    if not regions:
        parser.error("--regions must name at least one region")
    try:
        callbacks = callback_policy.CallbackPolicy.parse(args.callback_allowed_networks)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        pools = load_pools(args.pools, region=regions[0])
    except PoolConfigError as exc:
        parser.error(str(exc))
    rules = SpecRules(supported_regions=regions, callbacks=callbacks, pools=pools)
    try:
        prices = PriceTable.from_yaml(args.prices) if args.prices else PriceTable()
    except PriceTableError as exc:
        parser.error(str(exc))
    if not args.billing_loop_interval > 0:
        parser.error("--billing-loop-interval must be a positive number of seconds")
    # the metrics name users: beyond loopback, only an operator's token reads them
    app = build_app(config, rules, metrics_need_token=not is_loopback(args.host), prices=prices,
                    billing_interval_s=args.billing_loop_interval)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
