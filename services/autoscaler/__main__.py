"""python -m services.autoscaler --provider local|gce: size the worker fleet to the ready work.

local: each instance is `python -m worker ...` on this machine (or `--worker-command
"python -m services.simworker"` for simulated workers); `--zones local-a,local-b:2` gives it zones
(with capacities) to choose between. gce: Compute Engine VMs; needs --gce-project, --gce-zones and
--gce-kafka-bootstrap (the Kafka address the VMs can reach). Either way, each new instance's zone is
drawn by weight of the zones' recent creations (events/core/zones.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shlex
import signal
import sys
from pathlib import Path

from events.codec import Codec
from events.errors import LogError
from events.kafka_log import KafkaEventLog
from events.publisher import Publisher
from services.autoscaler.pools import PoolConfigError, load_pools
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from services.providers.base import InstanceProvider, ProviderError
from services.providers.local import WORKER_COMMAND, LocalProvider, parse_zones

log = logging.getLogger("services.autoscaler")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.autoscaler", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--provider", choices=("local", "gce"), default="local")
    p.add_argument("--pools", type=Path, default=None, help="pools YAML file (default: the six standard pools)")
    p.add_argument("--region", default=None, help="region of the default pools (local: 'local')")
    p.add_argument("--loop-period", type=float, default=15.0, help="seconds between autoscaler passes")
    p.add_argument("--worker-command", default=shlex.join(WORKER_COMMAND),
                   help="local provider: the worker agent command (flags are appended)")
    p.add_argument("--worker-args", default="", help="local provider: extra flags for every worker")
    p.add_argument("--zones", default="", help="local provider: zones to spread instances over, each with an "
                   "optional capacity, e.g. local-a,local-b:2 (default: none)")
    p.add_argument("--gce-project", default=None)
    p.add_argument("--gce-zones", default="", help="comma-separated zones, e.g. us-central1-a,us-central1-b")
    p.add_argument("--gce-kafka-bootstrap", default=None, help="Kafka address as the VMs see it")
    p.add_argument("--gce-service-account", default=None)
    p.add_argument("--gce-network", default="global/networks/default")
    p.add_argument("--gce-subnetwork", default=None)
    p.add_argument("--gce-squall-package", default="squall", help="pip requirement the VMs install")
    p.add_argument("--gce-api-endpoint", default=None, help="Compute API endpoint (tests: a local fake)")
    return p


def build_provider(args: argparse.Namespace, config: ServiceConfig) -> InstanceProvider:
    if args.provider == "local":
        return LocalProvider(config, shlex.split(args.worker_command), shlex.split(args.worker_args),
                             zones=parse_zones(args.zones))
    from services.providers.gce import GceProvider, GceSettings

    zones = tuple(z.strip() for z in args.gce_zones.split(",") if z.strip())
    if not args.gce_project or not zones:
        raise ConfigError("the gce provider needs --gce-project and --gce-zones")
    return GceProvider(GceSettings(
        project=args.gce_project, zones=zones, kafka_bootstrap=args.gce_kafka_bootstrap or config.bootstrap_servers,
        topic_prefix=config.topic_prefix, service_account=args.gce_service_account, network=args.gce_network,
        subnetwork=args.gce_subnetwork, squall_package=args.gce_squall_package, api_endpoint=args.gce_api_endpoint))


async def run(args: argparse.Namespace) -> None:
    config = from_args(args, need_database=False)
    serve_metrics(config)
    region = args.region or ("local" if args.provider == "local" else "us-central1")
    settings = AutoscalerSettings(pools=load_pools(args.pools, region), loop_period_s=args.loop_period)
    provider = build_provider(args, config)
    event_log = await KafkaEventLog.connect(config.bootstrap_servers, client_id="autoscaler")
    autoscaler = Autoscaler(event_log, Publisher(event_log, config.topics, Codec()), provider, settings)
    task = asyncio.create_task(autoscaler.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await provider.close()
        await event_log.close()
        log.info("autoscaler stopped: %s", autoscaler.stats)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(run(parser().parse_args()))
    except (ConfigError, PoolConfigError, ProviderError, LogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
