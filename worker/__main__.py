"""Run a worker agent:

    python -m worker --instance-name w1 --cores 2 --memory-gib 4 --storage-gib 10 \\
        --pool standard --region local --bootstrap 127.0.0.1:9092 [--topic-prefix squall.] [--home ~/.squall] \
        [--storage-endpoint http://127.0.0.1:PORT] [--system-bucket squall-system] [--agent-host H --agent-url U]

State goes under <home>/instances/<instance-name>/ (journal, scratch volumes, the spool of logs
not yet shipped); logs, status documents and resource usage go to the system bucket
(worker/records.py), job files move between gs:// and /io as the submitting user
(worker/storage.py). The agent serves live logs of running attempts on its own HTTP endpoint
(worker/agent_http.py; --agent-host/--agent-port, announced as --agent-url or http://HOST:PORT).
SIGTERM or SIGINT drains: no new work, running attempts get --drain-timeout seconds, then
InstanceDeactivated. Needs root and podman set up by deploy/podman/setup.sh; the API service is
started if absent.
Jobs run sandboxed (worker/sandbox.py); jobs on a network cannot reach this host, 169.254.169.254,
the Kafka bootstrap servers or any --job-firewall-block endpoint (worker/job_firewall.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from events.process.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from events.process.run import run_process
from events.running_reports import DEFAULT_INTERVAL_S as DEFAULT_BILLING_INTERVAL_S
from worker.agent import Agent, AgentSettings
from worker.agent_http import AgentEndpoint, bind, new_secret
from worker.attempt import AttemptServices, WorkerLimits
from worker.clock import SystemClock
from worker.job_firewall import FirewallError, resolve_endpoints
from worker.job_networks import JobNetworkError, JobNetworks
from worker.journal import Journal
from worker.jvm_pool import JvmError, JvmPool, compile_entryway, default_java_home
from worker.podman_runtime import PodmanRuntime
from worker.podman_service import DEFAULT_SOCKET, ensure_podman_service
from worker.records import AttemptRecords
from worker.scratch import GIB, ScratchManager
from worker.storage import JobFiles, SharedStore, UserStores
from worker.user_stores import PerUserGcsStores
from worker.userns import UsernsConfigError

if TYPE_CHECKING:
    from events.kafka_log import KafkaEventLog


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m worker", description="squall worker agent")
    p.add_argument("--instance-name", required=True, help="this instance's name (unique in the fleet)")
    p.add_argument("--cores", type=int, required=True, help="cores offered to jobs")
    p.add_argument("--memory-gib", type=float, required=True, help="memory offered to jobs, GiB")
    p.add_argument("--storage-gib", type=int, required=True, help="scratch storage offered to jobs, GiB")
    p.add_argument("--pool", default="standard")
    p.add_argument("--region", default="local")
    p.add_argument("--preemptible", action="store_true")
    p.add_argument("--podman-socket", type=Path, default=DEFAULT_SOCKET, help="podman API unix socket")
    p.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds between heartbeats")
    p.add_argument("--billing-interval", type=float, default=DEFAULT_BILLING_INTERVAL_S,
                   help="seconds between reports of the running attempts, which bill them while they run")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="seconds running attempts get at shutdown")
    p.add_argument("--pids-limit", type=int, default=WorkerLimits.pids_limit, help="max processes per job")
    p.add_argument("--java-home", type=Path, default=None,
                   help="JDK bind-mounted into JVM job containers (default: the one `java` on PATH is in)")
    p.add_argument("--jvm-image", default="localhost/debian-python3:bookworm",
                   help="image the warm JVMs run in (glibc-based; the JDK comes from the host)")
    p.add_argument("--kafka-wait", type=float, default=600.0,
                   help="seconds to keep trying a broker that does not answer at start (e.g. restarting)")
    p.add_argument("--scratch-mode", choices=("loop", "directory"), default="loop",
                   help="loop: an ext4 image per attempt enforces the storage quota; directory: no quota")
    p.add_argument("--agent-host", default="127.0.0.1", help="address the live-log endpoint listens on")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="address the Prometheus endpoint (--metrics-port) listens on: a host's own address where "
                        "the machine's scrapers reach it from outside (an isolated worker's LAN address)")
    p.add_argument("--agent-port", type=int, default=0,
                   help="its port (0: the one this instance used last time if free, else any)")
    p.add_argument("--agent-url", default=None,
                   help="the URL the front end reaches it at (default http://AGENT-HOST:PORT)")
    p.add_argument("--job-public-subnet", default=JobNetworks().public.subnet,
                   help="subnet of the podman network of public jobs (NAT egress)")
    p.add_argument("--job-private-subnet", default=JobNetworks().private.subnet,
                   help="subnet of the podman network of private jobs (no egress)")
    p.add_argument("--job-firewall-block", action="append", default=[], metavar="HOST[:PORT]",
                   help="a control-plane endpoint jobs must not reach (repeatable; a URL, or a NETWORK/PREFIX "
                        "for every address in it, is accepted). The "
                        "Kafka bootstrap servers, this host's own addresses and 169.254.169.254 always are")
    add_arguments(p)
    return p


def build_jvm_pool(args: argparse.Namespace, runtime: PodmanRuntime, state_dir: Path,
                   config: ServiceConfig) -> JvmPool | None:
    try:
        java_home = args.java_home or default_java_home()
        entryway = compile_entryway(Path.home() / ".cache" / "squall" / "jvm-entryway", java_home)
    except JvmError as exc:
        logging.getLogger("squall.worker").warning("JVM jobs disabled: %s", exc)
        return None
    return JvmPool(runtime=runtime, instance_name=args.instance_name, work_dir=state_dir / "jvm",
                   socket_dir=args.podman_socket.parent / f"jvm-{args.instance_name}", image=args.jvm_image,
                   java_home=java_home, entryway_dir=entryway)


async def connect_log(args: argparse.Namespace, config: ServiceConfig, stop: asyncio.Event) -> KafkaEventLog | None:
    """The log, once the broker answers: a broker that is restarting (or not reachable yet from a
    booting VM) is waited for, up to --kafka-wait seconds; a refusal (credentials, ACLs, topics
    that forget) is final at once. None when stopped while waiting."""
    from events.errors import LogAuthorizationError, LogError
    from events.retention import RetentionError
    from events.service_log import open_service_log  # imported here: unit tests of the CLI need no aiokafka

    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.kafka_wait
    delay = 1.0
    while True:
        try:
            # a worker administers nothing: squall up created the topics; it checks it may trust them
            return await open_service_log(config.bootstrap_servers, config.topics, "worker",
                                          client_id=f"worker-{args.instance_name}",
                                          security=config.kafka_security, create_topics=False)
        except (RetentionError, LogAuthorizationError):
            raise
        except LogError as exc:
            if loop.time() + delay > deadline:
                raise
            logging.getLogger("squall.worker").warning("Kafka is not answering (%s); trying again in %.0f s",
                                                       exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return None
        delay = min(delay * 2, 10.0)


async def run_agent(args: argparse.Namespace, config: ServiceConfig, stop: asyncio.Event) -> None:
    # first: a misconfigured worker stops before it touches podman
    log = await connect_log(args, config, stop)
    if log is None:
        return
    ensure_podman_service(args.podman_socket)
    state_dir = config.home / "instances" / args.instance_name
    blocked = resolve_endpoints([*config.bootstrap_servers.split(","), *args.job_firewall_block])
    networks = JobNetworks.with_subnets(args.job_public_subnet, args.job_private_subnet, tuple(blocked))
    runtime = PodmanRuntime(args.podman_socket, networks=networks)
    try:
        await runtime.prepare_job_networks()  # before any job can run: networked jobs are refused until then
        await runtime.release_orphans(f"squall-{args.instance_name}-")
        await run_agent_with(args, config, runtime, state_dir, log, stop)
    finally:
        await runtime.release_job_networks()
        await runtime.close()


async def run_agent_with(args: argparse.Namespace, config: ServiceConfig, runtime: PodmanRuntime,
                         state_dir: Path, log: KafkaEventLog, stop: asyncio.Event) -> None:
    journal = Journal(state_dir)
    store = config.object_store()  # squall's bucket, as the worker's own identity
    # a GCS-API server has no identities: the front end's bucket grants are its ACL
    user_stores: UserStores = (SharedStore(store) if config.storage_endpoint is not None
                               else PerUserGcsStores(store, config.system_bucket))
    records = AttemptRecords(store, config.system_bucket, state_dir / "spool")
    services = AttemptServices(
        instance_name=args.instance_name, runtime=runtime,
        scratch=ScratchManager(state_dir / "scratch", mode=args.scratch_mode), files=JobFiles(user_stores),
        records=records, clock=SystemClock(), limits=WorkerLimits(pids_limit=args.pids_limit), region=args.region)
    endpoint = AgentEndpoint(records, new_secret(), bind(args.agent_host, state_dir / "agent-port", args.agent_port),
                             advertise_url=args.agent_url)
    settings = AgentSettings(
        instance_name=args.instance_name, cores=args.cores, memory_bytes=int(args.memory_gib * GIB),
        storage_gib=args.storage_gib, pool=args.pool, region=args.region, preemptible=args.preemptible,
        heartbeat_interval_s=args.heartbeat_interval, billing_interval_s=args.billing_interval,
        drain_timeout_s=args.drain_timeout)
    services.jvm = build_jvm_pool(args, runtime, state_dir, config)
    try:
        await Agent(settings, log, config.topics, services, journal, endpoint=endpoint).run(stop)
    finally:
        journal.close()
        await log.close()
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = from_args(args, need_database=False)
    except ConfigError as exc:
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config, args.metrics_host)
    # cannot reach or trust the log, or the sandbox is not set up: say why (the supervisor restarts us)
    return run_process(lambda stop: run_agent(args, config, stop), prog="python -m worker",
                       errors=(UsernsConfigError, FirewallError, JobNetworkError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
