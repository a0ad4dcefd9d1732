"""The dependency resolver: `python -m projections.resolver --bootstrap HOST:PORT [--topic-prefix P]`.

Folds the batch topic with the lifecycle core and appends what it derives (jobs ready, cancelled
or completed, batches cancelled or completed, attempts assigned to workers or to be killed).
Run one or more: members of the consumer group "<prefix>resolver" share the partitions. It may
be killed at any moment; the next owner of a partition rebuilds it from the partition's snapshot
(with --database-url) and the log after it, or from the whole log.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from functools import partial

from events.process.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from events.process.metrics import set_projection_lag
from events.process.run import run_process
from events.service_log import open_service_log
from projections.lag import report_lag
from projections.resolver.service import Resolver, ResolverSettings
from projections.resolver.snapshots import ResolverSnapshots
from projections.runner import tune_gc_for_batches
from projections.snapshots.options import add_snapshot_arguments, open_snapshot_store, snapshot_settings
from projections.snapshots.schedule import SnapshotSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m projections.resolver", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--max-records", type=int, default=ResolverSettings.max_records,
                        help="records folded between two appends")
    add_snapshot_arguments(parser)
    return parser.parse_args(argv)


async def serve(config: ServiceConfig, settings: ResolverSettings, args: argparse.Namespace,
                snapshot_settings_: SnapshotSettings, stop: asyncio.Event) -> None:
    log = await open_service_log(config.bootstrap_servers, config.topics, "resolver", client_id="squall-resolver",
                                 security=config.kafka_security)
    store = open_snapshot_store(args, config.database_url)
    snapshots = ResolverSnapshots(store, snapshot_settings_) if store is not None else None
    try:
        producer = f"resolver/{socket.gethostname()}:{os.getpid()}"
        resolver = Resolver(log, config.topics, producer, settings, snapshots=snapshots)
        lag = asyncio.create_task(report_lag(log, resolver.positions, partial(set_projection_lag, "resolver"), stop))
        try:
            await resolver.run(stop)
        finally:
            lag.cancel()
    finally:
        await log.close()
        if store is not None:
            await store.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = from_args(args, need_database=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.max_records < 1:
        print("error: --max-records must be at least 1", file=sys.stderr)
        return 2
    try:
        snapshots = snapshot_settings(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config)
    tune_gc_for_batches(young=50_000)  # the state is millions of long-lived objects: collect young ones less often
    return run_process(lambda stop: serve(config, ResolverSettings(max_records=args.max_records), args, snapshots, stop),
                       prog="python -m projections.resolver")


if __name__ == "__main__":
    sys.exit(main())
