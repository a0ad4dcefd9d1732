"""A broker whose storage was formatted before squall secured it (an existing ~/.squall) gets its SCRAM
users from Kafka's own kafka-configs on the next start, and only the missing ones."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from deploy.kafka import KafkaBroker, KafkaDeployError
from deploy.kafka_auth import KafkaAuth
from events.kafka_log import KafkaEventLog
from events.log import Message

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_an_unsecured_broker_is_secured_in_place(tmp_path: Path) -> None:
    plain = KafkaBroker(tmp_path / "kafka")
    bootstrap = plain.start()
    auth = KafkaAuth.load_or_create(tmp_path / "auth")
    try:
        log = await KafkaEventLog.connect(bootstrap)
        await log.create_topics([])
        await log.close()
        # while the old, unauthenticated broker runs, starting it secured says what to do at once
        with pytest.raises(KafkaDeployError, match="running without authentication"):
            KafkaBroker(tmp_path / "kafka", security=auth.broker_security()).start()
    finally:
        plain.stop()

    # two users keep the test short: each one is a kafka-configs run (a JVM start)
    security = dataclasses.replace(auth.broker_security(), scram_users={u: auth.passwords[u] for u in ("admin", "worker")})
    secured = KafkaBroker(tmp_path / "kafka", security=security)
    assert secured.start() == bootstrap, "the loopback listener keeps its port"
    try:
        assert sorted(json.loads((tmp_path / "kafka" / "scram-users.json").read_text())) == ["admin", "worker"]
        # it authenticates (with no ACLs yet it may not even start a producer: read-only)
        worker = await KafkaEventLog.connect(secured.external_bootstrap, security=auth.client("worker", tls=True),
                                             read_only=True)
        await worker.close()
        admin = await KafkaEventLog.connect(secured.bootstrap, security=auth.client("admin", tls=False))
        try:
            from events.topics import TopicSpec

            await admin.create_topics([TopicSpec("upgraded", 1)])
            await admin.append([Message("upgraded", b"x")])
        finally:
            await admin.close()
        assert (tmp_path / "kafka" / "server.properties").stat().st_mode & 0o777 == 0o600
        assert not list((tmp_path / "kafka").glob("scram-user*.properties")), "a password file was left behind"
    finally:
        secured.stop()
