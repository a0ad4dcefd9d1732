"""Shared fixtures: the real Kafka broker and PostgreSQL server, started lazily once per session.

Only tests that ask for them (directly or through kafka_log / fresh_db) start them, so unit
tests never pay for a JVM. The shared broker accepts anyone (fast, and most tests are not about
security); `secure_kafka` is a second broker secured exactly as `squall up` secures its own. Point at servers you already run instead with
  SQUALL_TEST_KAFKA_BOOTSTRAP=127.0.0.1:9092   SQUALL_TEST_DATABASE_URL=postgresql://...
Each test gets its own topic prefix (`topics`) and its own database (`fresh_db`), so tests do
not see each other's data even on a shared server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.kafka import KafkaBroker
from deploy.kafka_auth import KafkaAuth
from deploy.postgres import EmbeddedPostgres, create_database, drop_database
from events.kafka_log import KafkaEventLog
from events.kafka_security import KafkaSecurity
from events.memory_log import MemoryEventLog
from events.topics import Topics


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
    """Started only by tests that ask for it (security tests, the e2e suite)."""
    data_dir = Path(tempfile.mkdtemp(prefix="squall-test-secure-kafka-"))
    auth = KafkaAuth.load_or_create(data_dir / "auth")
    broker = KafkaBroker(data_dir / "kafka", security=auth.broker_security(["127.0.0.1"]))
    try:
        broker.start()
        broker.stop_when_gone(os.getpid(), remove_data=True)
        auth.write_credentials(data_dir / "credentials", tls_roles={"worker"})
        yield SecureKafka(broker.bootstrap, broker.external_bootstrap, data_dir / "credentials", auth, broker)
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


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
