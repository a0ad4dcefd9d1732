"""A real single-node Apache Kafka broker (KRaft, combined controller+broker) on loopback.

The jars come from Maven Central through `mvn dependency:copy-dependencies`, once, into
~/.cache/squall/kafka/<version>/libs (or $SQUALL_CACHE/kafka/...); after that a start takes a few seconds. The broker keeps
its log dirs, its own logs and a pid file under `data_dir`, so `start()` is idempotent: a second
call finds the running broker and returns the same bootstrap address.

Without `security` it has one PLAINTEXT listener that accepts anyone (the shared test broker).
With it (deploy/kafka_auth.py: what `squall up` runs) every listener authenticates: SCRAM on a
loopback listener (`bootstrap`) for local services, SCRAM over TLS (`external_bootstrap`) for
workers, and the StandardAuthorizer denies whatever no ACL allows.

    python -m deploy.kafka start --data-dir /tmp/k      # prints the bootstrap address
    python -m deploy.kafka stop --data-dir /tmp/k
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from deploy.kafka_auth import (
    BrokerSecurity,
    add_scram_arguments,
    broker_client,
    broker_properties,
    java_client_properties,
    scram_digest,
)
from deploy.processes import pid_alive
from events.kafka_security import KafkaSecurity

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
DEFAULT_HEAP = "-Xmx768m"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>squall.deploy</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

# The broker logs to files in its data dir (never to the test's stdout).
_LOG4J2_PROPERTIES = """status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs}/server.log
appender.file.filePattern = {logs}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""


class KafkaDeployError(RuntimeError):
    """The broker could not be resolved, formatted or started; the message says where to look."""


def new_cluster_id() -> str:
    """A random KRaft cluster id. Like Kafka's own Uuid.randomUuid, never one starting with '-':
    the storage tool would read it as an option (1 in 64 random ids; it broke a CI run)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_cache_root() -> Path:
    """Where downloaded artifacts are cached: $SQUALL_CACHE, else ~/.cache/squall (never the repo)."""
    return Path(os.environ.get("SQUALL_CACHE") or Path.home() / ".cache" / "squall")


def kafka_jars(version: str = KAFKA_VERSION, cache_root: Path | None = None) -> Path:
    """The directory with Kafka's runtime jars, resolved with mvn on first use and cached."""
    home = (cache_root or default_cache_root()) / "kafka" / version
    libs = home / "libs"
    done = home / ".resolved"
    if done.exists():
        return libs
    if shutil.which("mvn") is None:
        raise KafkaDeployError("mvn is not installed: apt-get install -y maven openjdk-17-jre-headless")
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:  # two test runs on a clean machine resolve once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            _resolve_jars(home, version)
    return libs


def _resolve_jars(home: Path, version: str) -> None:
    libs = home / "libs"
    (home / "pom.xml").write_text(_POM.format(kafka=version, log4j=LOG4J_VERSION))
    tmp_libs = home / "libs.partial"
    shutil.rmtree(tmp_libs, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp_libs}", "-DincludeScope=runtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaDeployError(f"resolving Kafka {version} jars with mvn failed ({' '.join(cmd)}):\n"
                               f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    shutil.rmtree(libs, ignore_errors=True)
    tmp_libs.rename(libs)
    (home / ".resolved").write_text(version)


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaDeployError("java is not installed: apt-get install -y openjdk-17-jre-headless")
    return java


async def wait_until_answers(bootstrap: str, timeout_s: float, security: KafkaSecurity | None = None) -> None:
    """Poll the broker's metadata with aiokafka until it answers or the timeout passes."""
    from aiokafka.admin import AIOKafkaAdminClient

    auth = security.client_kwargs() if security else {}
    deadline = time.monotonic() + timeout_s
    with _quiet("aiokafka"):  # "Unable connect" errors are expected while the JVM boots
        while time.monotonic() < deadline:
            if await _answers(AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **auth)):
                return
            await asyncio.sleep(0.3)
    raise KafkaDeployError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s "
                           "(an overloaded machine starts the JVM slowly; see the broker's logs)")


async def _answers(admin: object) -> bool:
    try:
        await admin.start()  # type: ignore[attr-defined]
        await admin.describe_cluster()  # type: ignore[attr-defined]
        return True
    except Exception:  # not up yet: connection refused, no controller, ...
        return False
    finally:
        try:
            await admin.close()  # type: ignore[attr-defined]
        except Exception:
            pass


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


class KafkaBroker:
    """One KRaft broker whose whole state lives in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None, heap: str = DEFAULT_HEAP,
                 version: str = KAFKA_VERSION, security: BrokerSecurity | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.requested_port = port
        self.heap = heap
        self.version = version
        self.security = security

    # --- files in data_dir -------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "kafka.port"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "kraft-data"

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _ports(self) -> tuple[int, int, int]:
        """(broker port, controller port, TLS port): kept in data_dir so a restart reuses them."""
        try:
            ports = [int(p) for p in self.port_file.read_text().split()]
            if self.requested_port in (None, ports[0]):
                if len(ports) == 2:  # written before the TLS listener existed
                    ports.append(self._another_port(ports))
                    self.port_file.write_text(" ".join(map(str, ports)) + "\n")
                return ports[0], ports[1], ports[2]
        except (OSError, ValueError, IndexError):
            pass
        ports = [self.requested_port or free_port()]
        ports.append(self._another_port(ports))
        ports.append(self._another_port(ports))
        self.port_file.write_text(" ".join(map(str, ports)) + "\n")
        return ports[0], ports[1], ports[2]

    @staticmethod
    def _another_port(taken: list[int]) -> int:
        port = free_port()
        while port in taken:
            port = free_port()
        return port

    @property
    def bootstrap(self) -> str:
        """The loopback listener (the only one without security; with it, SCRAM without TLS)."""
        broker, _, _ = self._ports()
        return f"127.0.0.1:{broker}"

    @property
    def external_bootstrap(self) -> str:
        """The SASL_SSL listener that workers use (the loopback one when the broker is not secured)."""
        if self.security is None:
            return self.bootstrap
        _, _, external = self._ports()
        return f"{self.security.external_host}:{external}"

    def running_external_bootstrap(self) -> str | None:
        """The worker listener the broker was last configured with (server.properties), if any."""
        try:
            lines = (self.data_dir / "server.properties").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            if line.startswith("advertised.listeners="):
                for listener in line.split("=", 1)[1].split(","):
                    if listener.startswith("EXTERNAL://"):
                        return listener.removeprefix("EXTERNAL://")
        return None

    def is_running(self) -> bool:
        pid = self._read_pid()
        return pid is not None and pid_alive(pid) and self._is_this_broker(pid)

    def _is_this_broker(self, pid: int) -> bool:
        """A stale pid file may name a pid the system has since given to another process."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return True  # no /proc: trust the pid file
        return str(self.data_dir / "server.properties").encode() in cmdline

    # --- lifecycle ---------------------------------------------------------------------------
    def _write_config(self, broker_port: int, controller_port: int, external_port: int) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.storage_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "log.segment.bytes": str(64 * 1024 * 1024),
            "log.retention.hours": "-1",
        }
        if self.security is not None:
            props.update(broker_properties(self.security, broker_port, controller_port, external_port))
        path = self.data_dir / "server.properties"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the broker's own passwords
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES.format(logs=self.log_dir))
        return path

    def _java_cmd(self, main_class: str, *args: str) -> list[str]:
        libs = kafka_jars(self.version)
        return [_java(), self.heap, "-Xms128m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.log_dir}",
                "-cp", f"{libs}/*", main_class, *args]

    def _format_storage(self, config: Path) -> None:
        if (self.storage_dir / "meta.properties").exists():
            return
        cluster_id = new_cluster_id()
        # SCRAM users are created with the storage: no extra JVM start on a fresh broker
        scram = add_scram_arguments(self.security) if self.security else []
        cmd = self._java_cmd("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config),
                             "--ignore-formatted", *scram)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise KafkaDeployError(f"formatting Kafka storage in {self.storage_dir} failed:\n"
                                   f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        if self.security is not None:
            self._record_scram_users(self.security.scram_users)

    # --- SCRAM users (a broker formatted before it was secured gets them with kafka-configs) ----
    @property
    def _scram_file(self) -> Path:
        return self.data_dir / "scram-users.json"

    def _record_scram_users(self, users: dict[str, str]) -> None:
        recorded = self._recorded_scram_users()
        recorded.update({u: scram_digest(u, p) for u, p in users.items()})
        self._scram_file.write_text(json.dumps(recorded, indent=2, sort_keys=True))

    def _recorded_scram_users(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._scram_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _ensure_scram_users(self) -> None:
        """Create (or update) the SCRAM users this data dir has not recorded, with Kafka's kafka-configs."""
        assert self.security is not None
        recorded = self._recorded_scram_users()
        todo = {u: p for u, p in self.security.scram_users.items() if recorded.get(u) != scram_digest(u, p)}
        if not todo:
            return
        client_config = self.data_dir / "broker-client.properties"
        fd = os.open(client_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(java_client_properties(broker_client(self.security)))
        for user, password in sorted(todo.items()):
            scram_config = self.data_dir / "scram-user.properties"  # never on a command line
            fd = os.open(scram_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"SCRAM-SHA-512=password={password}\n")  # the file form: no brackets
            try:
                cmd = self._java_cmd("kafka.admin.ConfigCommand", "--bootstrap-server", self.bootstrap,
                                     "--command-config", str(client_config), "--alter", "--entity-type", "users",
                                     "--entity-name", user, "--add-config-file", str(scram_config))
                proc = subprocess.run(cmd, capture_output=True, text=True)
            finally:
                scram_config.unlink(missing_ok=True)
            if proc.returncode != 0:
                raise KafkaDeployError(f"creating the Kafka SCRAM user {user!r} with kafka-configs failed:\n"
                                       f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            self._record_scram_users({user: password})

    def start(self, timeout_s: float = START_TIMEOUT_S) -> str:
        """Start (or find running) and wait until the broker answers; returns the bootstrap address."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # its configuration holds the broker's passwords
        self.log_dir.mkdir(exist_ok=True)
        if self.is_running():
            bootstrap = self.bootstrap
            if self._runs_unsecured() and self.security is not None:
                raise KafkaDeployError(f"the broker in {self.data_dir} is running without authentication (started "
                                       "by an older squall or by hand); stop it (squall down) and start it again "
                                       "to secure it")
            running = self.running_external_bootstrap()
            if self.security is not None and running not in (None, self.external_bootstrap):
                raise KafkaDeployError(f"the broker in {self.data_dir} serves workers on {running}, not "
                                       f"{self.external_bootstrap}; stop it (squall down) and start it again")
            _run_coroutine(wait_until_answers(bootstrap, timeout_s, self._own_client()))
            if self.security is not None:
                self._ensure_scram_users()
            return bootstrap
        broker_port, controller_port, external_port = self._ports()
        config = self._write_config(broker_port, controller_port, external_port)
        self._format_storage(config)
        out = open(self.log_dir / "stdout.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(self._java_cmd("kafka.Kafka", str(config)), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        finally:
            out.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        bootstrap = f"127.0.0.1:{broker_port}"
        try:
            _run_coroutine(self._wait_started(proc, bootstrap, timeout_s))
        except KafkaDeployError as exc:
            self.stop()
            raise KafkaDeployError(f"{exc}\nbroker output:\n{self.log_tail()}") from exc
        except BaseException:
            self.stop()
            raise
        if self.security is not None:
            self._ensure_scram_users()
        return bootstrap

    def _runs_unsecured(self) -> bool:
        try:
            return "authorizer.class.name=" not in (self.data_dir / "server.properties").read_text()
        except OSError:
            return False

    def _own_client(self) -> KafkaSecurity | None:
        return broker_client(self.security) if self.security is not None else None

    async def _wait_started(self, proc: subprocess.Popen[bytes], bootstrap: str, timeout_s: float) -> None:
        waiter = asyncio.ensure_future(wait_until_answers(bootstrap, timeout_s, self._own_client()))
        while not waiter.done():
            if proc.poll() is not None:
                waiter.cancel()
                raise KafkaDeployError(f"Kafka exited with code {proc.returncode} while starting "
                                       f"(logs in {self.log_dir})")
            await asyncio.sleep(0.2)
        waiter.result()

    def log_tail(self, lines: int = 25) -> str:
        """The broker's last output and errors, for error messages (the data dir may be deleted)."""
        out = []
        for name in ("stdout.log", "server.log"):
            try:
                text = (self.log_dir / name).read_text(errors="replace").splitlines()
            except OSError:
                continue
            if name == "server.log":
                text = [line for line in text if " ERROR " in line or " FATAL " in line or "Exception" in line]
            out += [f"[{name}] {line}" for line in text[-lines:]]
        return "\n".join(out) or "(no output)"

    def stop_when_gone(self, owner_pid: int, remove_data: bool = False) -> None:
        """Start a small watchdog process that stops this broker (and with remove_data deletes its
        data dir) once `owner_pid` has exited: a test run killed hard leaves no broker behind."""
        cmd = [sys.executable, "-m", "deploy.kafka", "watch", "--data-dir", str(self.data_dir),
               "--owner", str(owner_pid)] + (["--remove-data"] if remove_data else [])
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent))

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it has not exited within timeout_s."""
        pid = self._read_pid()
        if pid is None:
            return
        if pid_alive(pid) and self._is_this_broker(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout_s
            while pid_alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _reap(pid)
        self.pid_file.unlink(missing_ok=True)


def stack_broker(home: Path, external_host: str | None = None) -> KafkaBroker:
    """The local stack's own broker (home/kafka), secured with the stack's secrets (home/kafka-auth):
    what squall up, squall kafka start and the supervisor all start. Its worker listener is on
    `external_host` (127.0.0.1, or the fleet LAN's gateway for isolated workers); without one, on the
    address `remember_external_host` kept once squall up started it, so the supervisor's restarts
    keep it."""
    from deploy.kafka_auth import KafkaAuth

    if external_host is None:
        try:
            external_host = (home / "kafka" / "external-host").read_text().strip() or "127.0.0.1"
        except OSError:
            external_host = "127.0.0.1"
    auth = KafkaAuth.load_or_create(home / "kafka-auth")
    return KafkaBroker(home / "kafka", security=auth.broker_security([external_host]))


def remember_external_host(home: Path, host: str) -> None:
    """The worker listener's address the stack's broker runs with, for its restarts (stack_broker)."""
    path = home / "kafka" / "external-host"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{host}\n")


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _run_coroutine(coro: object) -> None:
    """Run a coroutine to completion from sync code, even when an event loop is already running
    in this thread (e.g. inside an async test fixture): then it runs in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)  # type: ignore[arg-type]
        return
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def _watch(broker: KafkaBroker, owner_pid: int, remove_data: bool) -> None:
    while pid_alive(owner_pid) and broker.is_running():
        time.sleep(1.0)
    broker.stop()
    if remove_data:
        shutil.rmtree(broker.data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kafka", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status", "fetch", "watch"],
                        help="watch: stop the broker once --owner PID exits (used by stop_when_gone)")
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".squall" / "kafka")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--owner", type=int, default=None, help="watch: the pid whose exit stops the broker")
    parser.add_argument("--remove-data", action="store_true", help="watch: delete --data-dir afterwards")
    args = parser.parse_args(argv)
    broker = KafkaBroker(args.data_dir, port=args.port)
    if args.action == "fetch":
        print(kafka_jars())
    elif args.action == "watch":
        if args.owner is None:
            parser.error("watch needs --owner PID")
        _watch(broker, args.owner, args.remove_data)
    elif args.action == "start":
        print(broker.start())
    elif args.action == "stop":
        broker.stop()
    else:
        running = broker.is_running()
        print(f"running {broker.bootstrap}" if running else "stopped")
        return 0 if running else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
