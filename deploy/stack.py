"""The embedded local stack: Kafka, PostgreSQL, the services and local workers on one machine.

`squall up` is idempotent: what is already running is left alone, what is missing is started.
State lives in SQUALL_HOME (default ~/.squall): stack.json (URLs, the default user's token),
run/*.pid, logs/*.log, kafka/, postgres/, blobs/, instances/.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.processes import ProcessSpec, ProcessTable

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
    extra: dict[str, str] = field(default_factory=dict)

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


def common_args(state: StackState) -> tuple[str, ...]:
    return ("--bootstrap", state.bootstrap, "--topic-prefix", state.topic_prefix,
            "--database-url", state.database_url, "--home", state.home)


def write_pools(state: StackState) -> Path:
    """The local stack's pools: small workers of each type, `workers` standard ones kept warm; or the
    operator's own pools file (`squall up --pools FILE`), checked before any service starts.

    Jobs pick a pool by memory keyword and preemptibility (Hail's rule), so every type exists;
    the autoscaler starts a worker for a pool only when that pool has ready work.
    """
    import yaml

    own = state.extra.get("pools_file")
    if own:
        from services.autoscaler.pools import PoolConfigError, load_pools

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


def service_specs(state: StackState) -> list[ProcessSpec]:
    common = common_args(state)
    pools = str(write_pools(state))
    ports = metrics_ports(state)

    def with_metrics(name: str, *args: str) -> tuple[str, ...]:
        return (*common, *args, "--metrics-port", str(ports[name]))

    return [
        ProcessSpec("resolver", SERVICE_MODULES["resolver"], with_metrics("resolver")),
        ProcessSpec("readmodel", SERVICE_MODULES["readmodel"], with_metrics("readmodel")),
        ProcessSpec("callbacks", SERVICE_MODULES["callbacks"], with_metrics("callbacks")),
        ProcessSpec("scheduler", SERVICE_MODULES["scheduler"],
                    with_metrics("scheduler", "--pools", pools, "--heartbeat-timeout", str(state.heartbeat_timeout_s))),
        ProcessSpec("autoscaler", SERVICE_MODULES["autoscaler"],
                    with_metrics("autoscaler", "--provider", "local", "--pools", pools, "--loop-period", "2",
                                 *(("--zones", state.extra["zones"]) if state.extra.get("zones") else ()))),
        ProcessSpec("front", SERVICE_MODULES["front"], (*common, "--host", "127.0.0.1", "--port", str(state.port))),
    ]


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


async def _create_topics(bootstrap: str, prefix: str) -> None:
    from events.kafka_log import KafkaEventLog
    from events.topics import Topics

    log = await KafkaEventLog.connect(bootstrap, client_id="squall-up")
    try:
        await log.create_topics(Topics(prefix=prefix).specs())
    finally:
        await log.close()


def _kafka(home: Path):  # type: ignore[no-untyped-def]
    from deploy.kafka import KafkaBroker

    return KafkaBroker(home / "kafka")


def _postgres(home: Path):  # type: ignore[no-untyped-def]
    from deploy.postgres import EmbeddedPostgres

    return EmbeddedPostgres(home / "postgres")


def migration_dirs() -> list[Path]:
    root = Path(__file__).resolve().parent.parent
    return [root / "projections" / "migrations", root / "services" / "front" / "migrations",
            root / "services" / "callbacks" / "migrations"]


def up(home: Path, *, bootstrap: str | None = None, database_url: str | None = None, port: int | None = None,
       topic_prefix: str | None = None, workers: int = 1, worker_cores: int = 2, heartbeat_timeout_s: float = 30.0,
       say=print, timeout_s: float = 120.0, pools_file: Path | None = None,
       zones: str | None = None) -> StackState:  # type: ignore[no-untyped-def]
    """Bring the stack up (idempotent) and return its state once the API answers.

    `pools_file` replaces the default pools (a PoolConfig YAML, see services/autoscaler/pools.py);
    `zones` gives the local workers zones to be spread over (`local-a,local-b:2`: names with optional
    capacities). Both are kept for later `up`s of the same home."""
    _check_fleet_options(pools_file, zones)
    from deploy.postgres import create_database
    from projections.db import migrate

    home.mkdir(parents=True, exist_ok=True)
    previous = StackState.load(home)
    # the log's topics are the stack's data: keep the prefix it was created with unless told otherwise
    topic_prefix = topic_prefix or (previous.topic_prefix if previous else "squall.")
    embedded_kafka = bootstrap is None and (previous is None or previous.embedded_kafka)
    embedded_postgres = database_url is None and (previous is None or previous.embedded_postgres)
    if bootstrap is None:
        bootstrap = _kafka(home).start() if embedded_kafka else previous.bootstrap  # type: ignore[union-attr]
        say(f"kafka       {bootstrap}" + (" (embedded)" if embedded_kafka else ""))
    if database_url is None:
        if embedded_postgres:
            database_url = create_database(_postgres(home).start(), "squall", exist_ok=True)
        else:
            database_url = previous.database_url  # type: ignore[union-attr]
        say("postgres    " + ("embedded, data in " + str(home / "postgres") if embedded_postgres else "external"))
    applied = migrate(database_url, migration_dirs())
    if applied:
        say(f"migrations  applied {', '.join(applied)}")
    asyncio.run(_create_topics(bootstrap, topic_prefix))

    if port is None:
        port = previous.port if previous and not _port_taken_by_other(previous) else free_port()
    token = previous.token if previous else ""
    state = StackState(home=str(home), api_url=f"http://127.0.0.1:{port}", token=token,
                       billing_project=DEFAULT_BILLING_PROJECT, bootstrap=bootstrap, database_url=database_url,
                       topic_prefix=topic_prefix, port=port, embedded_kafka=embedded_kafka,
                       embedded_postgres=embedded_postgres, workers=workers, worker_cores=worker_cores,
                       heartbeat_timeout_s=heartbeat_timeout_s)
    if previous:
        state.extra = dict(previous.extra)
    if pools_file is not None:
        state.extra["pools_file"] = str(Path(pools_file).resolve())
    if zones is not None:
        state.extra["zones"] = zones
    state.token = _ensure_default_user(database_url, token)
    specs = service_specs(state)  # picks the metrics ports, so save after
    state.save()

    table = ProcessTable(home)
    for spec in specs:
        table.start(spec)
    if not wait_for_http(f"{state.api_url}/healthcheck", timeout_s):
        raise StackError(f"the front end did not answer on {state.api_url} within {timeout_s:.0f}s; "
                         f"see {table.log_file('front')}")
    dead = [name for name in SERVICE_MODULES if table.pid(name) is None]
    if dead:
        raise StackError("not running: " + ", ".join(f"{n} (log: {table.log_file(n)})" for n in dead))
    return state


def _check_fleet_options(pools_file: Path | None, zones: str | None) -> None:
    """Refuse a bad --pools or --zones before starting anything, naming what to fix."""
    from services.autoscaler.pools import PoolConfigError, load_pools
    from services.providers.base import ProviderError
    from services.providers.local import parse_zones

    try:
        if pools_file is not None:
            load_pools(Path(pools_file), "local")
        if zones is not None:
            parse_zones(zones)
    except (PoolConfigError, ProviderError) as exc:
        raise StackError(str(exc)) from exc


def _port_taken_by_other(state: StackState) -> bool:
    """True when the previous port is now used by something that is not our front end."""
    if ProcessTable(Path(state.home)).pid("front"):
        return False
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", state.port)) == 0


def _ensure_default_user(database_url: str, token: str) -> str:
    """The default user and billing project exist; returns a token that works for them (the old one
    if it still does, so `squall up` twice keeps the token users already copied)."""
    import psycopg

    from services.front.users import create_user, make_operator, token_digest

    async def ensure() -> str:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            if token:
                cur = await conn.execute("SELECT 1 FROM front_tokens WHERE token_sha256 = %s", (token_digest(token),))
                if await cur.fetchone():
                    await make_operator(conn, DEFAULT_USER)  # a stack made before operators existed
                    return token
            # the one user of a local stack runs it, so it sees the fleet too
            created = await create_user(conn, DEFAULT_USER, billing_project=DEFAULT_BILLING_PROJECT, operator=True)
            return created.token

    return asyncio.run(ensure())


def down(home: Path, say=print) -> None:  # type: ignore[no-untyped-def]
    """Stop every process of the stack, then the embedded Kafka and PostgreSQL. Data stays in home."""
    state = StackState.load(home)
    table = ProcessTable(home)
    for name in reversed(list(SERVICE_MODULES)):
        if table.stop(name):
            say(f"stopped {name}")
    for name in table.names():  # anything else the stack started (e.g. local workers)
        if table.stop(name):
            say(f"stopped {name}")
    _stop_local_workers(home, say)
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


def _stop_local_workers(home: Path, say) -> None:  # type: ignore[no-untyped-def]
    """Workers started by the local provider keep pid files <home>/instances/<name>.pid.

    SIGTERM lets each agent drain and announce InstanceDeactivated before it exits."""
    table = ProcessTable(home)
    table.run_dir = home / "instances"
    for name in table.names():
        if table.stop(name, timeout_s=70.0):
            say(f"stopped worker {name}")


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
    for name, lag in _projection_lag(state).items():
        components.setdefault(name, {})["lag"] = lag
    return {"running": all(c.get("healthy") for c in components.values()), "home": state.home,
            "api_url": state.api_url, "token": state.token, "billing_project": state.billing_project,
            "bootstrap": state.bootstrap, "database_url": state.database_url,
            "logs": str(table.log_dir), "components": components}


def _projection_lag(state: StackState) -> dict[str, int]:
    """Events not yet applied per Postgres projection: log end offsets minus stored offsets."""
    try:
        from projections.lag import projection_lag
    except ImportError:
        return {}
    try:
        return projection_lag(state.bootstrap, state.database_url, state.topic_prefix)
    except Exception:  # status must answer even when Kafka or Postgres is down
        return {}
