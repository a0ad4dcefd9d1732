"""The dependency resolver: `python -m projections.resolver --bootstrap HOST:PORT [--topic-prefix P]`.

Folds the batch topic with the lifecycle core and appends what it derives (jobs ready, cancelled
or completed, batches cancelled or completed, attempts assigned to workers or to be killed).
Run one or more: members of the consumer group "<prefix>resolver" share the partitions. It may
be killed at any moment; the next owner of a partition rebuilds it from the log.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from functools import partial

from events.errors import LogError
from events.service_log import open_service_log
from projections.lag import report_lag
from projections.resolver.service import Resolver, ResolverSettings
from projections.runner import tune_gc_for_batches
from services.config import (
    ConfigError,
    ServiceConfig,
    add_arguments,
    from_args,
    serve_metrics,
    stop_on_signals,
)
from services.metrics import set_projection_lag


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m projections.resolver", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--max-records", type=int, default=ResolverSettings.max_records,
                        help="records folded between two appends")
    return parser.parse_args(argv)


async def serve(config: ServiceConfig, settings: ResolverSettings) -> None:
    log = await open_service_log(config.bootstrap_servers, config.topics, "resolver", client_id="squall-resolver",
                                 security=config.kafka_security)
    stop = stop_on_signals()
    try:
        producer = f"resolver/{socket.gethostname()}:{os.getpid()}"
        resolver = Resolver(log, config.topics, producer, settings)
        lag = asyncio.create_task(report_lag(log, resolver.positions, partial(set_projection_lag, "resolver"), stop))
        try:
            await resolver.run(stop)
        finally:
            lag.cancel()
    finally:
        await log.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_args(args, need_database=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_records < 1:
        print("error: --max-records must be at least 1", file=sys.stderr)
        return 2
    serve_metrics(config)
    tune_gc_for_batches(young=50_000)  # the state is millions of long-lived objects: collect young ones less often
    try:
        asyncio.run(serve(config, ResolverSettings(max_records=args.max_records)))
    except LogError as exc:  # e.g. a topic it rebuilds from may delete records
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
