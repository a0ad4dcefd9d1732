"""Run the front end under uvicorn against a real Kafka and PostgreSQL, with the web UI at /ui.

    python -m services.front --host 127.0.0.1 --port 8000 --bootstrap 127.0.0.1:9092 \
        --database-url postgresql://... [--topic-prefix squall.] [--home ~/.squall]

At start-up it applies the read-model and front migrations (idempotent), creates the topics
that are missing, and connects the producer (acks=all, idempotent). While it serves, a background
task cancels the running batches of billing projects over their limit (services/front/billing_loop.py).
This entry point composes the API (services/front) and the UI (services/webui, which reads the front's
queries and users): the front's modules never import the UI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from events.pools_file import PoolConfigError, load_pools
from events.process.config import ServiceConfig, add_arguments, from_args
from events.process.run import run_process
from projections.cost import PriceTable, PriceTableError
from services import callback_policy
from services.front.asgi_app import create_app
from services.front.billing_loop import INTERVAL_S as BILLING_INTERVAL_S
from services.front.billing_loop import run_billing_limit_loop
from services.front.offload import tune_gc_for_requests
from services.front.specs import SpecRules
from services.front.startup import is_loopback, job_data_for, running_deps
from services.webui.app import close_ui, create_ui


def build_app(config: ServiceConfig, rules: SpecRules, *, metrics_need_token: bool = False,
              prices: PriceTable | None = None, billing_interval_s: float = BILLING_INTERVAL_S) -> FastAPI:
    """An app whose lifespan connects to Kafka and PostgreSQL (for uvicorn), with the web UI at /ui."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.front", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--regions", default="local",
                        help="comma-separated supported regions; the first is the default region")
    parser.add_argument("--data-locality", choices=("refuse", "warn", "off"), default="refuse",
                        help="a job with regions whose gs:// inputs are in a bucket outside them: refused with a 400 "
                             "(refuse), accepted with the attribute squall.locality_warning (warn), or not checked")
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
    try:
        pools = load_pools(args.pools, region=regions[0])
    except PoolConfigError as exc:
        parser.error(str(exc))
    rules = SpecRules(supported_regions=regions, callbacks=callbacks, pools=pools, data_locality=args.data_locality)
    try:
        prices = PriceTable.from_yaml(args.prices) if args.prices else PriceTable()
    except PriceTableError as exc:
        parser.error(str(exc))
    if not args.billing_loop_interval > 0:
        parser.error("--billing-loop-interval must be a positive number of seconds")
    # the metrics name users: beyond loopback, only an operator's token reads them
    app = build_app(config, rules, metrics_need_token=not is_loopback(args.host), prices=prices,
                    billing_interval_s=args.billing_loop_interval)
    return run_process(lambda stop: serve(app, args.host, args.port, stop), prog="python -m services.front")


async def serve(app: FastAPI, host: str, port: int, stop: asyncio.Event) -> None:
    """uvicorn until SIGTERM/SIGINT (its own handlers drain the requests in flight) or `stop`."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))

    async def exit_when_stopped() -> None:
        await stop.wait()
        server.should_exit = True

    watcher = asyncio.create_task(exit_when_stopped())
    try:
        await server.serve()
    finally:
        watcher.cancel()


if __name__ == "__main__":
    sys.exit(main())
