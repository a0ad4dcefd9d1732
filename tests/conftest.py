"""Shared fixtures: the real Kafka broker, PostgreSQL server and GCS-API server (fake-gcs-server),
started lazily once per session by the project's own deploy/ code.

Only tests that ask for them (directly or through kafka_log / fresh_db / gcs_store) start them, so
unit tests never pay for a JVM. The shared broker accepts anyone (fast, and most tests are not about
security); `secure_kafka` is a second broker secured exactly as `squall up` secures its own, its
worker listener on the fleet LAN's gateway (deploy/fleet_lan.py, held for the session) so isolated
workers reach it as they reach `squall up --isolated-workers`'s broker. Point at
servers you already run instead with
  SQUALL_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092   SQUALL_TEST_DATABASE_URL=postgresql://...
  SQUALL_TEST_STORAGE_ENDPOINT=http://127.0.0.1:PORT
Each test gets its own topic prefix (`topics`), its own database (`fresh_db`) and its own buckets
(`bucket`), so tests do not see each other's data even on a shared server.

Hypothesis runs under the `squall` profile: a failure prints the blob that replays it
(`@reproduce_failure(...)`), and the example database lives in memory, so nothing is written
into the tree (pin a case that once failed with @example instead).
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.database import InMemoryExampleDatabase

from deploy.kafka import KafkaBroker
from deploy.kafka_auth import KafkaAuth
from deploy.objectstore import FakeGcsServer
from deploy.postgres import EmbeddedPostgres, create_database, drop_database
from events.kafka_log import KafkaEventLog
from events.kafka_security import KafkaSecurity
from events.memory_log import MemoryEventLog
from events.objectstore import InMemoryObjectStore
from events.topics import Topics
from tests.podman_support import job_networks, podman, podman_socket  # noqa: F401  (fixtures, for every directory)

settings.register_profile("squall", print_blob=True, database=InMemoryExampleDatabase())
settings.load_profile("squall")
FAST = os.environ.get("SQUALL_TEST_FAST") == "1"  # `make test-fast`: no servers
# what `make test-fast` promises not to start (each has its marker: kafka, postgres, podman)
SERVER_FIXTURES = {"kafka_bootstrap": "kafka", "secure_kafka": "kafka", "pg_url": "postgres",
                   "podman_socket": "podman", "podman_ready": "podman"}

UNIT = Path(__file__).parent / "unit"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under `make test-fast` (which deselects the kafka/postgres/podman markers), a test that still
    reaches a server lacks its marker: fail it, naming the marker, rather than start the server."""
    if FAST:
        for fixture, marker in SERVER_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()) and item.get_closest_marker(marker) is None:
                pytest.fail(f"{item.nodeid} uses {fixture} without @pytest.mark.{marker}: add the marker")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Before the first unit test, collect what the integration suites left (a podman client's
    socket, a Popen): pytest reports such a finaliser's warning at the next test's setup, and in
    tests/unit a warning is an error, so an integration suite's leak would fail a pure test."""
    if nextitem is not None and nextitem.path.is_relative_to(UNIT) and not item.path.is_relative_to(UNIT):
        gc.collect()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("SQUALL_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="squall-test-kafka-"))
    broker = KafkaBroker(data_dir)
    try:
        bootstrap = broker.start()
        broker.stop_when_gone(os.getpid(), remove_data=True)  # even if this run is killed hard
        yield bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass(frozen=True)
class SecureKafka:
    """A broker secured as `squall up` secures its own: SCRAM per role, TLS for workers, ACLs."""

    bootstrap: str  # SCRAM on loopback (services)
    external_bootstrap: str  # SCRAM over TLS (workers)
    credentials: Path  # admin.json and <role>.json, for stack.up(kafka_credentials=...)
    auth: KafkaAuth
    broker: KafkaBroker

    def client(self, user: str, tls: bool = False) -> KafkaSecurity:
        return self.auth.client(user, tls=tls)


@pytest.fixture(scope="session")
def secure_kafka() -> Iterator[SecureKafka]:
    """Started only by tests that ask for it (security tests, the e2e suite). Its TLS listener for
    workers is on the fleet LAN's gateway when this machine lets us make the LAN (root), else on
    loopback (isolated workers then cannot run, and say why)."""
    from deploy.fleet_lan import GATEWAY, FleetLan, FleetLanError, Holder

    data_dir = Path(tempfile.mkdtemp(prefix="squall-test-secure-kafka-"))
    auth = KafkaAuth.load_or_create(data_dir / "auth")
    lan: FleetLan | None = FleetLan()
    holder = Holder.process()
    try:
        lan.acquire(holder)  # type: ignore[union-attr]
    except FleetLanError:
        lan = None
    broker = KafkaBroker(data_dir / "kafka", security=auth.broker_security([GATEWAY if lan else "127.0.0.1"]))
    try:
        if lan is not None:  # the one port the machine answers isolated workers on for this broker
            broker.data_dir.mkdir(parents=True, exist_ok=True)
            holder = Holder.process(ports=[int(broker.external_bootstrap.rsplit(":", 1)[1])])
            lan.acquire(holder)
        broker.start()
        broker.stop_when_gone(os.getpid(), remove_data=True)
        auth.write_credentials(data_dir / "credentials", tls_roles={"worker"})
        yield SecureKafka(broker.bootstrap, broker.external_bootstrap, data_dir / "credentials", auth, broker)
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if lan is not None:
            lan.release(holder)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    external = os.environ.get("SQUALL_TEST_DATABASE_URL")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="squall-test-pg-"))
    server = EmbeddedPostgres(data_dir / "data")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[str]:
    """A new, empty database on the session's server; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = create_database(pg_url, name)
    try:
        yield url
    finally:
        try:
            drop_database(pg_url, name)
        except Exception:  # a test that left connections open must not fail the teardown
            pass


@pytest.fixture
def topics() -> Topics:
    """Topic names unique to this test."""
    return Topics(prefix=f"t{uuid.uuid4().hex[:12]}.")


@pytest.fixture
async def kafka_log(kafka_bootstrap: str, topics: Topics) -> AsyncIterator[KafkaEventLog]:
    """A KafkaEventLog connected to the test broker, with this test's topics created."""
    log = await KafkaEventLog.connect(kafka_bootstrap, client_id=f"test-{topics.prefix.rstrip('.')}")
    try:
        await log.create_topics(topics.specs())
        yield log
    finally:
        await log.close()


@pytest.fixture
async def memory_log(topics: Topics) -> AsyncIterator[MemoryEventLog]:
    """A MemoryEventLog with this test's topics created."""
    log = MemoryEventLog()
    await log.create_topics(topics.specs())
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture(scope="session")
def storage_endpoint() -> Iterator[str]:
    """The endpoint of a real GCS-API server (fake-gcs-server, filesystem backend) for this session."""
    external = os.environ.get("SQUALL_TEST_STORAGE_ENDPOINT")
    if external:
        yield external
        return
    data_dir = Path(tempfile.mkdtemp(prefix="squall-test-gcs-"))
    server = FakeGcsServer(data_dir)
    try:
        endpoint = server.start()
        server.stop_when_gone(os.getpid(), remove_data=True)  # even if this run is killed hard
        yield endpoint
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def gcs_store(storage_endpoint: str) -> AsyncIterator[object]:
    """A GcsObjectStore (google-cloud-storage) talking to the session's fake-gcs-server."""
    from events.objectstore.gcs import GcsObjectStore

    store = GcsObjectStore(endpoint=storage_endpoint, retry_deadline_s=5)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def memory_store() -> InMemoryObjectStore:
    return InMemoryObjectStore()


@pytest.fixture
def bucket_name() -> str:
    """A bucket name unique to this test (create it in the store you use)."""
    return f"t-{uuid.uuid4().hex[:16]}"
