"""Run a worker agent:

    python -m worker --instance-name w1 --cores 2 --memory-gib 4 --storage-gib 10 \\
        --pool standard --region local --bootstrap 127.0.0.1:9092 [--topic-prefix squall.] [--home ~/.squall]

State goes under <home>/instances/<instance-name>/ (journal, scratch volumes); logs, status
documents and resource usage under <home>/blobs/ (worker/blobs.py). SIGTERM or SIGINT drains:
no new work, running attempts get --drain-timeout seconds, then InstanceDeactivated.
Needs root and podman set up by deploy/podman/setup.sh; the API service is started if absent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from services.config import (
    ConfigError,
    ServiceConfig,
    add_arguments,
    from_args,
    serve_metrics,
    stop_on_signals,
)
from worker.agent import Agent, AgentSettings
from worker.attempt import AttemptServices, WorkerLimits
from worker.blobs import LocalBlobStore
from worker.clock import SystemClock
from worker.journal import Journal
from worker.jvm_pool import JvmError, JvmPool, compile_entryway, default_java_home
from worker.podman_runtime import PodmanRuntime
from worker.podman_service import DEFAULT_SOCKET, ensure_podman_service
from worker.scratch import GIB, ScratchManager
from worker.storage import StorageRouter

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


async def run_agent(args: argparse.Namespace, config: ServiceConfig) -> None:
    stop = stop_on_signals()
    # first: a misconfigured worker stops before it touches podman
    log = await connect_log(args, config, stop)
    if log is None:
        return
    ensure_podman_service(args.podman_socket)
    state_dir = config.home / "instances" / args.instance_name
    runtime = PodmanRuntime(args.podman_socket)
    journal = Journal(state_dir)
    services = AttemptServices(
        instance_name=args.instance_name, runtime=runtime,
        scratch=ScratchManager(state_dir / "scratch", mode=args.scratch_mode), storage=StorageRouter(),
        blobs=LocalBlobStore(config.blob_root), clock=SystemClock(), limits=WorkerLimits(pids_limit=args.pids_limit))
    settings = AgentSettings(
        instance_name=args.instance_name, cores=args.cores, memory_bytes=int(args.memory_gib * GIB),
        storage_gib=args.storage_gib, pool=args.pool, region=args.region, preemptible=args.preemptible,
        heartbeat_interval_s=args.heartbeat_interval, drain_timeout_s=args.drain_timeout)
    services.jvm = build_jvm_pool(args, runtime, state_dir, config)
    try:
        await Agent(settings, log, config.topics, services, journal).run(stop)
    finally:
        journal.close()
        await runtime.close()
        await log.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_args(args, need_database=False)
    except ConfigError as exc:
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config)
    from events.errors import LogError

    try:
        asyncio.run(run_agent(args, config))
    except LogError as exc:  # cannot reach or trust the log: say why (the supervisor restarts us)
        print(f"python -m worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
