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
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from events.publisher import Publisher
from events.service_log import open_service_log
from projections.db import READMODEL_MIGRATIONS, migrate
from services.config import ServiceConfig, add_arguments, from_args
from services.front.app import create_app
from services.front.billing_loop import run_billing_limit_loop
from services.front.deps import FrontDeps
from services.front.specs import SpecRules

FRONT_MIGRATIONS = Path(__file__).with_name("migrations")


def apply_migrations(database_url: str) -> list[str]:
    """The read model's and the front's tables (the front reads both)."""
    return migrate(database_url, [READMODEL_MIGRATIONS, FRONT_MIGRATIONS])


@asynccontextmanager
async def running_deps(config: ServiceConfig, rules: SpecRules, pool_size: int = 10) -> AsyncIterator[FrontDeps]:
    await asyncio.to_thread(apply_migrations, config.database_url)
    log = await open_service_log(config.bootstrap_servers, config.topics, "front", client_id="squall-front",
                                 security=config.kafka_security)
    pool = AsyncConnectionPool(config.database_url, min_size=1, max_size=pool_size, open=False)
    try:
        await pool.open(wait=True)
        yield FrontDeps(pool=pool, publisher=Publisher(log, config.topics), blob_root=config.blob_root,
                        rules=rules, default_region=rules.supported_regions[0])
    finally:
        await pool.close()
        await log.close()


def build_app(config: ServiceConfig, rules: SpecRules) -> FastAPI:
    """An app whose lifespan connects to Kafka and PostgreSQL (for uvicorn), with the web UI at /ui."""
    import httpx

    from services.webui.app import close_ui, create_ui

    app = create_app(deps=None, metrics=True)  # type: ignore[arg-type]  # set by the lifespan
    # the UI calls this same API in-process (cancel button), with the signed-in user's token
    ui = create_ui(config.database_url, config.blob_root, api_transport=httpx.ASGITransport(app=app))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_deps(config, rules) as deps:
            app.state.deps = deps
            # Hail's billing-limit loop (see services/front/billing_loop.py for why it lives here)
            stop = asyncio.Event()
            billing = asyncio.create_task(run_billing_limit_loop(deps.pool, deps.submissions, stop=stop),
                                          name="billing-limit-loop")
            try:
                yield
            finally:
                stop.set()
                with contextlib.suppress(TimeoutError):  # a pass stuck on the database is cancelled
                    await asyncio.wait_for(billing, 10)
                await close_ui(ui)  # Starlette runs no lifespan of a mounted app

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
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = from_args(args)
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    if not regions:
        parser.error("--regions must name at least one region")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(build_app(config, SpecRules(supported_regions=regions)), host=args.host, port=args.port,
                log_level="info")
