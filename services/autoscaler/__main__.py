"""python -m services.autoscaler --provider local|gce: size the worker fleet to the ready work.

local: each instance is `python -m worker ...` on this machine (or `--worker-command
"python -m services.simworker"` for simulated workers); `--zones local-a,local-b:2` gives it zones
(with capacities) to choose between. gce: Compute Engine VMs; needs --gce-project, --gce-zones,
--gce-kafka-bootstrap (the TLS listener the VMs can reach), --worker-kafka-credentials, and the
release they install: --gce-release-bucket (this squall's wheel is built and uploaded there).
Either way, each new instance's zone is drawn by weight of the zones' recent creations
(events/core/zones.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
from pathlib import Path

from deploy.local_fleet import ZonesError, parse_zones
from events.codec import Codec
from events.pools_file import PoolConfigError, load_pools
from events.process.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from events.process.run import run_process
from events.process.signals import cancel_when_stopped
from events.publisher import Publisher
from events.service_log import open_service_log
from projections.scheduling.view_snapshots import ViewSnapshots, view_name
from projections.snapshots.options import add_snapshot_arguments, open_snapshot_store, snapshot_settings
from services.autoscaler.service import Autoscaler, AutoscalerSettings
from services.providers.base import InstanceProvider, ProviderError
from services.providers.gce_startup import WorkerBootstrap
from services.providers.local import WORKER_COMMAND, LocalProvider

log = logging.getLogger("services.autoscaler")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m services.autoscaler", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.add_argument("--provider", choices=("local", "gce"), default="local")
    p.add_argument("--pools", type=Path, default=None, help="pools YAML file (default: the six standard pools)")
    p.add_argument("--region", default=None, help="region of the default pools (local: 'local')")
    p.add_argument("--loop-period", type=float, default=15.0, help="seconds between autoscaler passes")
    add_snapshot_arguments(p)
    p.add_argument("--worker-command", default=shlex.join(WORKER_COMMAND),
                   help="local provider: the worker agent command (flags are appended)")
    p.add_argument("--worker-args", default="", help="local provider: extra flags for every worker")
    p.add_argument("--zones", default="", help="local provider: zones to spread instances over, each with an "
                   "optional capacity, e.g. local-a,local-b:2 (default: none)")
    p.add_argument("--worker-bootstrap", default=None,
                   help="local provider: the Kafka listener workers use (default: --bootstrap)")
    p.add_argument("--isolated-workers", action="store_true",
                   help="local provider: each worker a host of its own (network, mount, PID namespaces on the "
                        "fleet LAN; deploy/worker_hosts.py)")
    p.add_argument("--worker-kafka-credentials", type=Path, default=None,
                   help="the worker principal's credentials file (local: passed to each worker; gce: the CA "
                        "and password the VMs receive)")
    p.add_argument("--gce-project", default=None)
    p.add_argument("--gce-zones", default="", help="comma-separated zones, e.g. us-central1-a,us-central1-b")
    p.add_argument("--gce-kafka-bootstrap", default=None, help="Kafka address as the VMs see it")
    p.add_argument("--gce-service-account", default=None)
    p.add_argument("--gce-network", default="global/networks/default")
    p.add_argument("--gce-subnetwork", default=None)
    p.add_argument("--gce-release-bucket", default=None,
                   help="bucket the running squall's wheel is uploaded to, for the VMs to install (built here)")
    p.add_argument("--gce-wheel", type=Path, default=None,
                   help="with --gce-release-bucket: upload this wheel instead of building one from the source")
    p.add_argument("--gce-wheel-url", default=None, help="an already published release (gs://...) ...")
    p.add_argument("--gce-wheel-sha256", default=None, help="... and its sha256")
    p.add_argument("--gce-kafka-password-secret", default=None,
                   help="Secret Manager version holding the worker's Kafka password (else it goes in metadata)")
    p.add_argument("--gce-storage-endpoint", default=None, help="GCS API endpoint (tests: a local fake)")
    p.add_argument("--gce-api-endpoint", default=None, help="Compute API endpoint (tests: a local fake)")
    return p


def build_provider(args: argparse.Namespace, config: ServiceConfig) -> InstanceProvider:
    if args.provider == "local":
        return LocalProvider(config, shlex.split(args.worker_command), shlex.split(args.worker_args),
                             zones=parse_zones(args.zones), worker_bootstrap=args.worker_bootstrap,
                             worker_credentials=args.worker_kafka_credentials, isolated=args.isolated_workers)
    from services.providers.gce import GceProvider, GceSettings

    zones = tuple(z.strip() for z in args.gce_zones.split(",") if z.strip())
    if not args.gce_project or not zones:
        raise ConfigError("the gce provider needs --gce-project and --gce-zones")
    return GceProvider(GceSettings(
        project=args.gce_project, zones=zones, kafka_bootstrap=args.gce_kafka_bootstrap or config.bootstrap_servers,
        topic_prefix=config.topic_prefix, service_account=args.gce_service_account, network=args.gce_network,
        subnetwork=args.gce_subnetwork, bootstrap=worker_bootstrap(args), api_endpoint=args.gce_api_endpoint,
        system_bucket=config.system_bucket))


def worker_bootstrap(args: argparse.Namespace) -> WorkerBootstrap:
    """The release the VMs install (published now from this source tree, or given) and the worker
    principal's credentials they receive."""
    from deploy.release import GcsReleaseStore, ReleaseError, publish_release
    from events.kafka_security import KafkaCredentialsError, KafkaSecurity

    if args.gce_wheel_url and args.gce_wheel_sha256:
        url, sha256 = args.gce_wheel_url, args.gce_wheel_sha256
    elif args.gce_release_bucket:
        try:
            release = publish_release(GcsReleaseStore(args.gce_storage_endpoint), args.gce_release_bucket,
                                      wheel=args.gce_wheel)
        except ReleaseError as exc:
            raise ConfigError(str(exc)) from exc
        url, sha256 = release.url, release.sha256
        log.info("VMs install %s (sha256 %s)", url, sha256)
    else:
        raise ConfigError("the gce provider needs the release its VMs install: --gce-release-bucket BUCKET "
                          "(or --gce-wheel-url and --gce-wheel-sha256)")
    if args.worker_kafka_credentials is None:
        raise ConfigError("the gce provider needs --worker-kafka-credentials (the worker principal's file)")
    try:
        worker = KafkaSecurity.load(args.worker_kafka_credentials)
    except KafkaCredentialsError as exc:
        raise ConfigError(str(exc)) from exc
    if worker.security_protocol != "SASL_SSL" or not worker.ca_file:
        raise ConfigError("VMs reach Kafka over the network: the worker's credentials must be SASL_SSL with ca_file")
    if not args.gce_kafka_password_secret:
        log.warning("the worker's Kafka password goes into instance metadata; with --gce-kafka-password-secret "
                    "only the name of a Secret Manager version does")
    endpoints = {"storage": args.gce_storage_endpoint} if args.gce_storage_endpoint else {}
    try:
        return WorkerBootstrap(wheel_url=url, wheel_sha256=sha256, kafka_ca_pem=Path(worker.ca_file).read_text(),
                               kafka_username=worker.username or "worker",
                               kafka_password_secret=args.gce_kafka_password_secret,
                               kafka_password=None if args.gce_kafka_password_secret else worker.password,
                               endpoints=endpoints)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the VMs' bootstrap: {exc}") from exc


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    config = from_args(args, need_database=False)
    try:
        snapshot_settings_ = snapshot_settings(args)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    serve_metrics(config)
    region = args.region or ("local" if args.provider == "local" else "us-central1")
    settings = AutoscalerSettings(pools=load_pools(args.pools, region), loop_period_s=args.loop_period)
    provider = build_provider(args, config)
    event_log = await open_service_log(config.bootstrap_servers, config.topics, "autoscaler", client_id="autoscaler",
                                       security=config.kafka_security)
    store = open_snapshot_store(args, config.database_url)
    snapshots = ViewSnapshots(store, view_name(config.topics), snapshot_settings_) if store else None
    autoscaler = Autoscaler(event_log, Publisher(event_log, config.topics, Codec()), provider, settings,
                            snapshots=snapshots)
    task = asyncio.create_task(autoscaler.run())
    try:
        await cancel_when_stopped(task, stop)
    finally:
        await provider.close()
        await event_log.close()
        if store is not None:
            await store.close()
        log.info("autoscaler stopped: %s", autoscaler.stats)


def main() -> None:
    args = parser().parse_args()
    raise SystemExit(run_process(lambda stop: run(args, stop), prog="python -m services.autoscaler",
                                 errors=(PoolConfigError, ProviderError, ZonesError)))


if __name__ == "__main__":
    main()
