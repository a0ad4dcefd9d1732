"""The embedded local stack: Kafka, PostgreSQL, the object store, the services and local workers on one machine.

`squall up` is idempotent: what is already running is left alone, what is missing is started.
State lives in SQUALL_HOME (default ~/.squall): stack.json (URLs, the default user's token),
run/*.pid, logs/*.log, kafka/, postgres/, storage/ (the embedded GCS-API server's objects: job
logs, status, usage, users' files), instances/, and the broker's secrets: kafka-auth/ (its CA,
certificate and passwords) and credentials/<role>.json (one Kafka principal per service,
deploy/kafka_acls.py), all 0700/0600. The object store's part is deploy/stack_storage.py; with
`isolated_workers`, hosts/<instance>/ are the worker hosts' disks and deploy/isolation.py says
what changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from deploy import isolation, stack_billing, stack_storage, supervisor
from deploy.processes import ProcessSpec, ProcessTable
from deploy.state_dir import secure_state_dir
from events.errors import LogError
from events.kafka_security import KafkaSecurity

STATE_FILE = "stack.json"
DEFAULT_USER = "squall"
DEFAULT_BILLING_PROJECT = "default"
# started in this order, stopped in reverse; the local provider's workers are the autoscaler's children
SERVICE_MODULES = {
    "resolver": "projections.resolver",
    "readmodel": "projections.readmodel",
    "callbacks": "services.callbacks",
    "scheduler": "services.scheduler",
    "autoscaler": "services.autoscaler",
    "front": "services.front",
}


class StackError(RuntimeError):
    """The stack could not be brought up; the message says which part and where its log is."""


class StackUser(Protocol):
    """Makes the stack's one user exist, as an operator granted the data bucket, and returns a token
    that works for it (the given one if it still does). The front's tables are the services' to write:
    `squall up` passes services/front/stack_user.py's `ensure_stack_user`."""

    def __call__(self, database_url: str, token: str, *, user: str, billing_project: str, bucket: str,
                 system_bucket: str) -> str: ...


@dataclass
class StackState:
    home: str
    api_url: str
    token: str
    billing_project: str
    bootstrap: str
    database_url: str
    topic_prefix: str
    port: int
    embedded_kafka: bool
    embedded_postgres: bool
    workers: int = 1
    worker_cores: int = 2
    heartbeat_timeout_s: float = 30.0
    # run simulated workers (`python -m services.simworker`: no podman; each job takes this many ms)
    simulated_job_ms: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # the object store (absent from a stack.json written before it: the embedded server is the default)
    storage_endpoint: str | None = None  # None with embedded_storage False: real GCS
    embedded_storage: bool = True
    system_bucket: str = stack_storage.DEFAULT_SYSTEM_BUCKET
    bucket: str = stack_storage.DEFAULT_DATA_BUCKET  # the default user's
    kafka_credentials: str = ""  # directory of <role>.json; "" = an unauthenticated broker
    worker_bootstrap: str = ""  # the listener workers use ("" = bootstrap)
    isolated_workers: bool = False  # each local worker a host of its own (deploy/isolation.py)

    def credentials_file(self, role: str) -> str | None:
        return str(Path(self.kafka_credentials) / f"{role}.json") if self.kafka_credentials else None

    def save(self) -> None:
        path = Path(self.home) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.chmod(tmp, 0o600)  # holds a bearer token
        tmp.replace(path)

    @classmethod
    def load(cls, home: Path) -> StackState | None:
        try:
            return cls(**json.loads((home / STATE_FILE).read_text()))
        except FileNotFoundError:
            return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def common_args(state: StackState, role: str) -> tuple[str, ...]:
    credentials = state.credentials_file(role)
    storage = ("--system-bucket", state.system_bucket) + (
        ("--storage-endpoint", state.storage_endpoint) if state.storage_endpoint else ())
    return ("--bootstrap", state.bootstrap, "--topic-prefix", state.topic_prefix,
            "--database-url", state.database_url, "--home", state.home, *storage,
            *(("--kafka-credentials", credentials) if credentials else ()))


def write_pools(state: StackState) -> Path:
    """The local stack's pools: small workers of each type, `workers` standard ones kept warm; or the
    operator's own pools file (`squall up --pools FILE`), checked before any service starts.

    Jobs pick a pool by memory keyword and preemptibility (Hail's rule), so every type exists;
    the autoscaler starts a worker for a pool only when that pool has ready work.
    """
    import yaml

    own = state.extra.get("pools_file")
    if own:
        from events.pools_file import PoolConfigError, load_pools

        try:
            load_pools(Path(own), "local")
        except PoolConfigError as exc:
            raise StackError(f"--pools: {exc}") from exc
        return Path(own)

    pools = []
    for worker_type in ("standard", "highcpu", "highmem"):
        for preemptible in (True, False):
            warm = state.workers if (worker_type, preemptible) == ("standard", True) else 0
            pools.append({"name": worker_type + ("" if preemptible else "-np"), "worker_type": worker_type,
                          "preemptible": preemptible, "worker_cores": state.worker_cores, "storage_gib": 20,
                          "min_instances": warm, "max_instances": max(2, state.workers), "max_new_per_loop": 2,
                          "idle_time_ms": 300_000})
    path = Path(state.home) / "pools.yaml"
    path.write_text(yaml.safe_dump({"pools": pools}, sort_keys=False))
    return path


def metrics_ports(state: StackState) -> dict[str, int]:
    """A Prometheus port per background service (the front end serves /metrics on the API port),
    chosen once and kept in stack.json so scrape configs stay valid across down/up."""
    ports = {name: int(state.extra[f"metrics_port.{name}"]) for name in SERVICE_MODULES
             if f"metrics_port.{name}" in state.extra}
    for name in SERVICE_MODULES:
        if name != "front" and name not in ports:
            ports[name] = free_port()
            state.extra[f"metrics_port.{name}"] = str(ports[name])
    return ports


def job_firewall_endpoints(state: StackState) -> list[str]:
    """Control-plane endpoints the workers' job firewall blocks besides the broker (each worker adds
    its bootstrap servers) and the host's own addresses (always blocked). Endpoints of other hosts
    belong here: the object store, worker HTTP endpoints, the front end when it is not local."""
    store = [state.storage_endpoint] if state.storage_endpoint else []
    return [state.api_url, *store, *json.loads(state.extra.get("job_firewall_block", "[]"))]


def worker_args(state: StackState) -> str:
    args: list[str] = stack_billing.worker_args(state.extra)
    for endpoint in job_firewall_endpoints(state):
        args += ["--job-firewall-block", endpoint]
    return shlex.join(args)


def service_specs(state: StackState) -> list[ProcessSpec]:
    pools = str(write_pools(state))
    ports = metrics_ports(state)
    workers: tuple[str, ...] = ("--worker-bootstrap", state.worker_bootstrap or state.bootstrap)
    if state.kafka_credentials:
        workers += ("--worker-kafka-credentials", str(state.credentials_file("worker")))

    def with_metrics(name: str, *args: str) -> tuple[str, ...]:
        return (*common_args(state, name), *args, "--metrics-port", str(ports[name]))

    return [
        ProcessSpec("resolver", SERVICE_MODULES["resolver"], with_metrics("resolver")),
        ProcessSpec("readmodel", SERVICE_MODULES["readmodel"],
                    with_metrics("readmodel", *stack_billing.price_args(state.extra))),
        ProcessSpec("callbacks", SERVICE_MODULES["callbacks"], with_metrics("callbacks")),
        ProcessSpec("scheduler", SERVICE_MODULES["scheduler"],
                    with_metrics("scheduler", "--pools", pools, "--heartbeat-timeout", str(state.heartbeat_timeout_s))),
        ProcessSpec("autoscaler", SERVICE_MODULES["autoscaler"],
                    with_metrics("autoscaler", "--provider", "local", "--pools", pools, "--loop-period", "2",
                                 *workers, *_worker_flags(state),
                                 *(("--zones", state.extra["zones"]) if state.extra.get("zones") else ()),
                                 *(("--isolated-workers",) if state.isolated_workers else ()))),
        ProcessSpec("front", SERVICE_MODULES["front"],
                    (*common_args(state, "front"), "--host", "127.0.0.1", "--port", str(state.port), "--pools", pools,
                     *stack_billing.front_args(state.extra))),
    ]


def _worker_flags(state: StackState) -> tuple[str, ...]:
    """The autoscaler's flags for its workers: the agent's firewall blocks, or for simulated workers
    (the same flags as the worker agent, nothing runs) their command and job duration."""
    if state.simulated_job_ms is None:
        return ("--worker-args", worker_args(state))
    return ("--worker-command", shlex.join((sys.executable, "-m", "services.simworker")),
            "--worker-args", shlex.join(["--job-duration-ms", str(state.simulated_job_ms),
                                         *stack_billing.worker_args(state.extra)]))


def wait_for_http(url: str, timeout_s: float) -> bool:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


async def _prepare_log(bootstrap: str, prefix: str, admin: KafkaSecurity | None) -> None:
    """Create the topics with their settings, refuse topics that would forget, and (as the
    administrator of a secured broker) give each role's principal its ACLs."""
    from deploy.kafka_acls import apply_acls, stack_acls
    from events.kafka_log import KafkaEventLog
    from events.retention import retention_problems
    from events.topics import KEEP_FOREVER, Topics

    topics = Topics(prefix=prefix)
    log = await KafkaEventLog.connect(bootstrap, client_id="squall-up", security=admin)
    try:
        await log.create_topics(topics.specs())
        durable = [s.name for s in topics.specs() if s.configs == KEEP_FOREVER]
        problems = retention_problems(await log.topic_configs(durable))
        if problems:
            fix = ",".join(f"{k}={v}" for k, v in KEEP_FOREVER.items())
            raise StackError("topics squall rebuilds its state from may delete records: " + "; ".join(problems)
                             + f". Set {fix} on each (kafka-configs.sh --alter --entity-type topics "
                               f"--entity-name TOPIC --add-config {fix})")
    finally:
        await log.close()
    if admin is not None:
        await apply_acls(bootstrap, admin, stack_acls(topics))


def _kafka(home: Path):  # type: ignore[no-untyped-def]
    from deploy.kafka import KafkaBroker

    return KafkaBroker(home / "kafka")  # enough to find, stop or ask after it


def _embedded_kafka(home: Path, say, tls_everywhere: bool,  # type: ignore[no-untyped-def]
                    worker_host: str = "127.0.0.1") -> tuple[str, str, Path]:
    """Start the stack's own broker, secured: (services' bootstrap, workers' bootstrap, credentials dir).
    Its worker listener is on `worker_host` (the fleet LAN's gateway for isolated workers)."""
    from deploy.kafka import KafkaDeployError, remember_external_host, stack_broker
    from deploy.kafka_acls import ADMIN, ROLES
    from deploy.kafka_auth import KafkaAuth

    broker = stack_broker(home, worker_host)
    try:
        broker.start()
    except KafkaDeployError as exc:
        raise StackError(f"kafka did not start: {exc}") from exc
    remember_external_host(home, worker_host)
    auth = KafkaAuth.load_or_create(home / "kafka-auth")
    credentials = home / "credentials"
    auth.write_credentials(credentials, tls_roles=(*ROLES, ADMIN) if tls_everywhere else ("worker",))
    services = broker.external_bootstrap if tls_everywhere else broker.bootstrap
    say(f"kafka       {services} (embedded; SASL/SCRAM{' over TLS' if tls_everywhere else ''}), "
        f"workers {broker.external_bootstrap} (SASL/SCRAM over TLS)")
    return services, broker.external_bootstrap, credentials


def _postgres(home: Path):  # type: ignore[no-untyped-def]
    from deploy.postgres import EmbeddedPostgres

    return EmbeddedPostgres(home / "postgres")


def migration_dirs() -> list[Path]:
    root = Path(__file__).resolve().parent.parent
    return [root / "projections" / "migrations", root / "services" / "front" / "migrations",
            root / "services" / "callbacks" / "migrations"]


def up(home: Path, *, bootstrap: str | None = None, database_url: str | None = None, port: int | None = None,
       topic_prefix: str | None = None, workers: int = 1, worker_cores: int = 2, heartbeat_timeout_s: float = 30.0,
       storage: str = "embedded", storage_endpoint: str | None = None, system_bucket: str | None = None,
       bucket: str | None = None, simulated_job_ms: int | None = None,
       kafka_credentials: Path | None = None, worker_bootstrap: str | None = None, kafka_tls_everywhere: bool = False,
       isolated_workers: bool | None = None,
       prices: Path | None = None, billing_interval_s: float | None = None,
       billing_loop_interval_s: float | None = None,
       say=print, timeout_s: float = 120.0, pools_file: Path | None = None,
       zones: str | None = None, ensure_user: StackUser) -> StackState:  # type: ignore[no-untyped-def]
    """Bring the stack up (idempotent) and return its state once the API answers. With
    `simulated_job_ms`, its workers are simulated (no podman; every job succeeds after that long).
    With `isolated_workers` each local worker is a host of its own (deploy/isolation.py; None: as
    the stack was, else shared); switching needs a `squall down` first (the broker and the object
    store move to the fleet LAN).

    The embedded broker is always secured (SCRAM per role, TLS for workers; with
    `kafka_tls_everywhere` the services use TLS too). An external broker (`bootstrap`) is used as
    `kafka_credentials` says: a directory with admin.json (creates topics and ACLs) and <role>.json
    for each role; without it, unauthenticated. `prices` (the read model's price table),
    `billing_interval_s` (workers' reports of running attempts) and `billing_loop_interval_s` (the
    front end's billing-limit passes) are kept for later `up`s (deploy/stack_billing.py).

    `pools_file` replaces the default pools (a PoolConfig YAML, see events/pools_file.py);
    `zones` gives the local workers zones to be spread over (`local-a,local-b:2`: names with optional
    capacities). Both are kept for later `up`s of the same home."""
    _check_fleet_options(pools_file, zones)
    from deploy.postgres import create_database
    from projections.db import migrate

    secure_state_dir(home)  # 0700, an existing home included: job logs and tokens live here
    previous = StackState.load(home)
    # the log's topics are the stack's data: keep the prefix it was created with unless told otherwise
    topic_prefix = topic_prefix or (previous.topic_prefix if previous else "squall.")
    embedded_kafka = bootstrap is None and (previous is None or previous.embedded_kafka)
    embedded_postgres = database_url is None and (previous is None or previous.embedded_postgres)
    if isolated_workers is None:
        isolated_workers = bool(previous and previous.isolated_workers)
    if isolated_workers and simulated_job_ms is not None:
        raise StackError("simulated workers run nothing to isolate: drop --isolated-workers or --simulated-workers")
    worker_host = isolation.GATEWAY if isolated_workers else "127.0.0.1"
    if isolated_workers:
        _isolation(isolation.prepare, home, say)
    credentials = kafka_credentials
    if bootstrap is None and embedded_kafka:
        bootstrap, worker_bootstrap, credentials = _embedded_kafka(home, say, kafka_tls_everywhere, worker_host)
    elif bootstrap is None:
        assert previous is not None
        bootstrap = previous.bootstrap
        worker_bootstrap = worker_bootstrap or previous.worker_bootstrap or None
        if credentials is None and previous.kafka_credentials:
            credentials = Path(previous.kafka_credentials)
        say(f"kafka       {bootstrap}")
    admin = _admin_credentials(credentials)
    if database_url is None:
        if embedded_postgres:
            database_url = create_database(_postgres(home).start(), "squall", exist_ok=True)
        else:
            database_url = previous.database_url  # type: ignore[union-attr]
        say("postgres    " + ("embedded, data in " + str(home / "postgres") if embedded_postgres else "external"))
    applied = migrate(database_url, migration_dirs())
    if applied:
        say(f"migrations  applied {', '.join(applied)}")
    try:
        asyncio.run(_prepare_log(bootstrap, topic_prefix, admin))
    except LogError as exc:
        raise StackError(f"preparing the topics on Kafka at {bootstrap} failed: {exc}") from exc
    try:
        endpoint, embedded_storage = stack_storage.resolve(home, mode=storage, endpoint=storage_endpoint,
                                                           previous=previous, host=worker_host)
    except stack_storage.StorageSetupError as exc:
        raise StackError(str(exc)) from exc
    if endpoint is None and previous is None and not (system_bucket and bucket):
        raise StackError("real GCS: bucket names are global, so name the ones squall should use (and create if "
                         "missing): --system-bucket NAME (logs and status) --bucket NAME (the default user's files)")
    system_bucket = system_bucket or (previous.system_bucket if previous else stack_storage.DEFAULT_SYSTEM_BUCKET)
    bucket = bucket or (previous.bucket if previous else stack_storage.DEFAULT_DATA_BUCKET)
    say(f"storage     {endpoint or 'GCS'}" + (" (embedded, data in " + str(home / stack_storage.STORAGE_DIR) + ")"
                                              if embedded_storage else ""))

    if port is None:
        port = previous.port if previous and not _port_taken_by_other(previous) else free_port()
    token = previous.token if previous else ""
    state = StackState(home=str(home), api_url=f"http://127.0.0.1:{port}", token=token,
                       billing_project=DEFAULT_BILLING_PROJECT, bootstrap=bootstrap, database_url=database_url,
                       topic_prefix=topic_prefix, port=port, embedded_kafka=embedded_kafka,
                       embedded_postgres=embedded_postgres, workers=workers, worker_cores=worker_cores,
                       heartbeat_timeout_s=heartbeat_timeout_s, storage_endpoint=endpoint,
                       embedded_storage=embedded_storage, system_bucket=system_bucket, bucket=bucket,
                       simulated_job_ms=simulated_job_ms,
                       kafka_credentials=str(credentials.resolve()) if credentials else "",
                       worker_bootstrap=worker_bootstrap or "", isolated_workers=isolated_workers)
    if isolated_workers:
        _isolation(_publish_worker_ports, state)
    if previous:
        state.extra = dict(previous.extra)
    try:
        stack_billing.configure(home, state.extra, prices, billing_interval_s, billing_loop_interval_s)
    except stack_billing.BillingSettingsError as exc:
        raise StackError(str(exc)) from exc
    if pools_file is not None:
        state.extra["pools_file"] = str(Path(pools_file).resolve())
    if zones is not None:
        state.extra["zones"] = zones
    try:
        stack_storage.prepare(endpoint, system_bucket=system_bucket, bucket=bucket)
        stack_storage.migrate_local_blobs(home, endpoint, system_bucket, say)
    except stack_storage.StorageSetupError as exc:
        raise StackError(str(exc)) from exc
    state.token = ensure_user(database_url, token, user=DEFAULT_USER, billing_project=DEFAULT_BILLING_PROJECT,
                              bucket=bucket, system_bucket=system_bucket)
    specs = service_specs(state)  # picks the metrics ports, so save after
    state.save()

    table = ProcessTable(home)
    # the supervisor starts what is not running and keeps it so (deploy/supervisor.py)
    supervisor.ensure_running(home, supervisor.Plan(specs, kafka=embedded_kafka, postgres=embedded_postgres,
                                                    storage=embedded_storage))
    if not wait_for_http(f"{state.api_url}/healthcheck", timeout_s):
        raise StackError(f"the front end did not answer on {state.api_url} within {timeout_s:.0f}s; "
                         f"see {table.log_file('front')} and {table.log_file('supervisor')}")
    deadline = time.monotonic() + 15.0
    while (dead := [name for name in SERVICE_MODULES if table.pid(name) is None]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if dead:
        raise StackError("not running: " + ", ".join(f"{n} (log: {table.log_file(n)})" for n in dead))
    return state


def _isolation(step, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        step(*args)
    except isolation.IsolationError as exc:
        raise StackError(str(exc)) from exc


def _publish_worker_ports(state: StackState) -> None:
    """Isolated workers reach the broker's worker listener and the object store over the fleet LAN:
    both must be served where the LAN reaches them, and the stack's own are opened on the gateway."""
    from urllib.parse import urlparse

    worker_listener = state.worker_bootstrap or state.bootstrap
    for address in worker_listener.split(","):
        isolation.reachable_from_lan(address, "the Kafka listener for workers")
    if state.storage_endpoint:
        isolation.reachable_from_lan(state.storage_endpoint, "the object store")
    ports = []
    if state.embedded_kafka:
        ports.append(int(worker_listener.split(",")[0].rsplit(":", 1)[1]))
    if state.embedded_storage and state.storage_endpoint:
        ports.append(int(urlparse(state.storage_endpoint).port or 80))
    isolation.hold_lan(Path(state.home), ports)


def _check_fleet_options(pools_file: Path | None, zones: str | None) -> None:
    """Refuse a bad --pools or --zones before starting anything, naming what to fix."""
    from deploy.local_fleet import ZonesError, parse_zones
    from events.pools_file import PoolConfigError, load_pools

    try:
        if pools_file is not None:
            load_pools(Path(pools_file), "local")
        if zones is not None:
            parse_zones(zones)
    except (PoolConfigError, ZonesError) as exc:
        raise StackError(str(exc)) from exc


def _admin_credentials(directory: Path | None) -> KafkaSecurity | None:
    """The administrator's principal from a credentials directory, after checking every role has one."""
    from deploy.kafka_acls import ADMIN, ROLES
    from events.kafka_security import KafkaCredentialsError

    if directory is None:
        return None
    missing = [r for r in (ADMIN, *ROLES) if not (directory / f"{r}.json").is_file()]
    if missing:
        raise StackError(f"Kafka credentials directory {directory} lacks {', '.join(f'{r}.json' for r in missing)} "
                         "(one credentials file per principal, see events/kafka_security.py)")
    try:
        return KafkaSecurity.load(directory / f"{ADMIN}.json")
    except KafkaCredentialsError as exc:
        raise StackError(str(exc)) from exc


def _port_taken_by_other(state: StackState) -> bool:
    """True when the previous port is now used by something that is not our front end."""
    if ProcessTable(Path(state.home)).pid("front"):
        return False
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", state.port)) == 0


def down(home: Path, say=print) -> None:  # type: ignore[no-untyped-def]
    """Stop every process of the stack, then the embedded Kafka and PostgreSQL. Data stays in home."""
    state = StackState.load(home)
    table = ProcessTable(home)
    if supervisor.stop(home):  # first, so nothing is restarted behind our back
        say("stopped supervisor")
    for name in reversed(list(SERVICE_MODULES)):
        if table.stop(name):
            say(f"stopped {name}")
    for name in table.names():  # anything else the stack started (e.g. local workers)
        if table.stop(name):
            say(f"stopped {name}")
    _stop_local_workers(home, say)
    if os.geteuid() == 0:  # worker hosts of this stack (also ones left by a crash while isolated)
        isolation.teardown(home, say)
    _sweep_job_firewall(say)
    if state is None or state.embedded_kafka:
        kafka = _kafka(home)
        if kafka.is_running():
            kafka.stop()
            say("stopped kafka")
    if state is None or state.embedded_postgres:
        pg = _postgres(home)
        if pg.is_running():
            pg.stop()
            say("stopped postgres")
    if state is None or state.embedded_storage:
        stack_storage.stop_embedded(home, say)


def _stop_local_workers(home: Path, say) -> None:  # type: ignore[no-untyped-def]
    """Workers started by the local provider keep pid files <home>/instances/<name>.pid.

    SIGTERM lets each agent drain and announce InstanceDeactivated before it exits."""
    table = ProcessTable(home)
    table.run_dir = home / "instances"
    for name in table.names():
        if table.stop(name, timeout_s=70.0):
            say(f"stopped worker {name}")


def _sweep_job_firewall(say) -> None:  # type: ignore[no-untyped-def]
    """Workers remove the job firewall and networks as the last of them exits; this also covers
    workers that died. Rules and networks still held by a live worker (another stack) stay."""
    if os.geteuid() != 0:
        return
    from worker.job_firewall import FirewallError, sweep
    from worker.job_networks import JobNetworks

    try:
        if not sweep():
            return
    except (FirewallError, OSError) as exc:
        say(f"job firewall: {exc}")
        return
    for network in JobNetworks().all():  # refused (and kept) while containers use it
        try:
            subprocess.run(["podman", "network", "rm", network.name], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return


def status(home: Path) -> dict[str, object]:
    """What `squall status --json` prints: URLs, the token, and each component's pid/health/lag."""
    import httpx

    state = StackState.load(home)
    if state is None:
        return {"running": False, "home": str(home), "message": "no stack here; run `squall up`"}
    table = ProcessTable(home)
    components: dict[str, dict[str, object]] = {}
    for name in SERVICE_MODULES:
        pid = table.pid(name)
        components[name] = {"pid": pid, "healthy": pid is not None}
        port = state.port if name == "front" else state.extra.get(f"metrics_port.{name}")
        if port:
            components[name]["metrics"] = f"http://127.0.0.1:{port}/metrics"
    try:
        healthy = httpx.get(f"{state.api_url}/healthcheck", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        healthy = False
    components["front"]["healthy"] = bool(components["front"]["pid"]) and healthy
    if state.embedded_kafka:
        kafka = _kafka(home)
        components["kafka"] = {"pid": kafka._read_pid(), "healthy": kafka.is_running()}
    if state.embedded_postgres:
        pg = _postgres(home)
        components["postgres"] = {"pid": None, "healthy": pg.is_running()}
    if state.embedded_storage:
        storage = stack_storage.embedded_status(home)
        components["storage"] = {"pid": storage["pid"], "healthy": storage["healthy"]}
    for name, lag in _projection_lag(state).items():
        components.setdefault(name, {})["lag"] = lag
    for name, counts in supervisor.read_counts(home).items():
        if name in components:
            components[name]["restarts"] = counts.get("restarts", 0)
    supervisor_pid = supervisor.running_pid(home)
    components["supervisor"] = {"pid": supervisor_pid, "healthy": supervisor_pid is not None}
    return {"running": all(c.get("healthy") for c in components.values()), "home": state.home,
            "api_url": state.api_url, "token": state.token, "billing_project": state.billing_project,
            "bootstrap": state.bootstrap, "database_url": state.database_url,
            "bucket": f"gs://{state.bucket}", "storage_endpoint": state.storage_endpoint,
            "system_bucket": f"gs://{state.system_bucket}",
            "logs": str(table.log_dir), "components": components, "workers": _workers(home)}


def _workers(home: Path) -> list[dict[str, object]]:
    """The local provider's agents: <home>/instances/<name>.pid, and <name>.restarts when the
    provider has restarted one (services/providers/local.py writes both); for isolated workers, their
    host (netns, address, init pid; None for a worker sharing this machine's network)."""
    from deploy.local_fleet import metrics_url

    table = ProcessTable(home)
    table.run_dir = home / "instances"
    hosts = isolation.worker_hosts_status(home)
    workers: list[dict[str, object]] = []
    for name in table.names():
        try:
            restarts = int(json.loads((home / "instances" / f"{name}.restarts").read_text())["restarts"])
        except (OSError, ValueError, KeyError):
            restarts = 0
        host = hosts.get(name, {})
        workers.append({"name": name, "pid": table.pid(name), "netns": host.get("netns"),
                        "address": host.get("address"), "host_init_pid": host.get("init_pid"),
                        "restarts": restarts, "metrics": metrics_url(home, name)})
    return workers


def _projection_lag(state: StackState) -> dict[str, int]:
    """Events not yet applied per Postgres projection: log end offsets minus stored offsets."""
    try:
        from projections.lag import projection_lag
    except ImportError:
        return {}
    try:
        admin = state.credentials_file("admin")
        security = KafkaSecurity.load(Path(admin)) if admin else None
        return projection_lag(state.bootstrap, state.database_url, state.topic_prefix, security)
    except Exception:  # status must answer even when Kafka or Postgres is down
        return {}
