"""deploy.kafka and deploy.postgres: real servers, idempotent starts, data kept across restarts."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from deploy.kafka import KafkaBroker
from deploy.postgres import EmbeddedPostgres, PostgresDeployError, create_database, drop_database
from events.kafka_log import KafkaEventLog
from events.log import Message
from events.topics import TopicSpec


async def _append_and_count(bootstrap: str, topic: str, append: bool) -> int:
    log = await KafkaEventLog.connect(bootstrap, client_id="deploy-test")
    try:
        await log.create_topics([TopicSpec(topic, 1)])
        if append:
            await log.append([Message(topic, b"kept", key=b"k")])
        return sum((await log.end_offsets(topic)).values())
    finally:
        await log.close()


@pytest.mark.kafka
@pytest.mark.slow
def test_broker_start_is_idempotent_and_data_survives_a_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    try:
        bootstrap = broker.start()
        assert broker.is_running()
        assert KafkaBroker(tmp_path / "kafka").start() == bootstrap  # finds the running one
        assert asyncio.run(_append_and_count(bootstrap, "kept", append=True)) == 1
        broker.stop()
        assert not broker.is_running()
        assert broker.start() == bootstrap  # same port, same data
        assert asyncio.run(_append_and_count(bootstrap, "kept", append=False)) == 1

        owner = subprocess.Popen(["sleep", "60"])
        broker.stop_when_gone(owner.pid)
        owner.kill()
        owner.wait()
        deadline = time.monotonic() + 30
        while broker.is_running() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not broker.is_running(), "the watchdog did not stop the broker after its owner exited"
    finally:
        broker.stop()
    broker.stop()  # stopping a stopped broker is harmless


@pytest.fixture
def pg_dir() -> Iterator[Path]:
    # Not tmp_path: the server runs as another user, and pytest keeps resetting its own temp root
    # to mode 0700 (a concurrent pytest run does it too), which locks that user out.
    root = Path(tempfile.mkdtemp(prefix="squall-test-deploy-pg-"))
    yield root / "pg"
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_embedded_postgres_is_idempotent_and_creates_databases(pg_dir: Path) -> None:
    server = EmbeddedPostgres(pg_dir)
    try:
        url = server.start()
        assert server.start() == url
        assert server.is_running()
        db = create_database(url, "squall_probe")
        with psycopg.connect(db) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("squall_probe",)
        assert create_database(url, "squall_probe", exist_ok=True) == db
        with pytest.raises(PostgresDeployError, match="already exists"):
            create_database(url, "squall_probe")
        with pytest.raises(PostgresDeployError, match="lower-case"):
            create_database(url, "Robert'); DROP TABLE students;--")
        drop_database(url, "squall_probe")
        drop_database(url, "squall_probe")  # dropping a missing database is fine
    finally:
        server.stop()
    assert not server.is_running()


def test_an_external_url_is_used_as_is() -> None:
    server = EmbeddedPostgres.external("postgresql://u@db.example:5432/squall")
    assert server.start() == "postgresql://u@db.example:5432/squall"
    server.stop()  # never stops someone else's server
    with pytest.raises(PostgresDeployError, match="postgresql://"):
        EmbeddedPostgres.external("mysql://nope")
