"""python -m services.scheduler: run one scheduler (it leads when the group makes it leader).

Run several for failover; exactly one places jobs at a time. With --database-url it also writes
per-job "why not scheduled" reasons to scheduling_explanations.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path

from events.codec import Codec
from events.pools_file import PoolConfigError, load_pools
from events.process.config import ConfigError, add_arguments, from_args, serve_metrics
from events.process.run import run_process
from events.process.signals import cancel_when_stopped
from events.publisher import Publisher
from events.service_log import open_service_log
from projections.scheduling.view_snapshots import ViewSnapshots, view_name
from projections.snapshots.options import add_snapshot_arguments, open_snapshot_store, snapshot_settings
from services.health.detector import HealthSettings
from services.providers.base import ProviderError
from services.scheduler.explanations import ExplanationWriter
from services.scheduler.service import Scheduler, SchedulerSettings

log = logging.getLogger("services.scheduler")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.scheduler", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--scheduler-id", default=f"{socket.gethostname()}-{os.getpid()}",
                   help="this process's name in leader elections (default host-pid)")
    p.add_argument("--pools", type=Path, default=None, help="pools YAML file (default: the six standard pools)")
    p.add_argument("--region", default="local", help="region of the default pools and job-private instances")
    p.add_argument("--provider", default="local", help="provider named in job-private InstanceRequested events")
    p.add_argument("--heartbeat-timeout", type=float, default=60.0,
                   help="seconds without a heartbeat before an instance is deactivated (not_responding)")
    p.add_argument("--activation-timeout", type=float, default=300.0,
                   help="seconds a requested instance may take to activate")
    add_snapshot_arguments(p)
    return p


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    config = from_args(args, need_database=False)
    try:
        snapshot_settings_ = snapshot_settings(args)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    serve_metrics(config)
    settings = SchedulerSettings(
        pools=load_pools(args.pools, args.region), job_private_region=args.region, provider=args.provider,
        health=HealthSettings(heartbeat_timeout_ms=int(args.heartbeat_timeout * 1000),
                              activation_timeout_ms=int(args.activation_timeout * 1000)))
    event_log = await open_service_log(config.bootstrap_servers, config.topics, "scheduler",
                                       client_id=f"scheduler-{args.scheduler_id}", security=config.kafka_security)
    explanations = ExplanationWriter(config.database_url) if config.database_url else None
    if explanations is not None:
        await explanations.start()
    store = open_snapshot_store(args, config.database_url)
    snapshots = ViewSnapshots(store, view_name(config.topics), snapshot_settings_) if store else None
    scheduler = Scheduler(event_log, Publisher(event_log, config.topics, Codec()), args.scheduler_id, settings,
                          explanations=explanations, snapshots=snapshots)
    task = asyncio.create_task(scheduler.run())
    try:
        await cancel_when_stopped(task, stop)
    finally:
        if explanations is not None:
            await explanations.close()
        if store is not None:
            await store.close()
        await event_log.close()
        log.info("scheduler %s stopped after %d passes, %d placements", args.scheduler_id,
                 scheduler.stats.passes, scheduler.stats.placed)


def main() -> None:
    args = parser().parse_args()
    raise SystemExit(run_process(lambda stop: run(args, stop), prog="python -m services.scheduler",
                                 errors=(PoolConfigError, ProviderError)))


if __name__ == "__main__":
    main()
