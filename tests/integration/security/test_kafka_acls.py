"""The secured broker enforces what deploy/kafka_acls.py says, on a real Kafka (secure_kafka fixture).

Each test has its own topic prefix; the administrator creates its topics and each role's ACLs, as
`squall up` does."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from deploy.kafka_acls import ROLES, Acl, apply_acls, role_acls, stack_acls
from events.errors import LogAuthorizationError, LogError
from events.kafka_log import KafkaEventLog
from events.kafka_security import KafkaSecurity
from events.log import Message
from events.topics import Topics
from tests.conftest import SecureKafka

pytestmark = [pytest.mark.kafka]


@pytest.fixture
async def secured_topics(secure_kafka: SecureKafka) -> AsyncIterator[Topics]:
    topics = Topics(prefix=f"s{uuid.uuid4().hex[:10]}.")
    admin = secure_kafka.client("admin")
    log = await KafkaEventLog.connect(secure_kafka.bootstrap, client_id="test-admin", security=admin)
    try:
        await log.create_topics(topics.specs())
    finally:
        await log.close()
    await apply_acls(secure_kafka.bootstrap, admin, stack_acls(topics))
    yield topics


async def connect(kafka: SecureKafka, role: str, tls: bool = False) -> KafkaEventLog:
    return await KafkaEventLog.connect(kafka.external_bootstrap if tls else kafka.bootstrap, client_id=f"test-{role}",
                                       security=kafka.client(role, tls=tls), read_only=role == "callbacks")


async def exercise(log: KafkaEventLog, topics: Topics, acl: Acl) -> None:
    """Do what the binding allows, the way the services do it."""
    if acl.resource == "group":
        name = acl.name + ("test" if acl.pattern == "prefixed" else "")
        consumer = await log.group_consumer(name, [topics.batch])
        await consumer.getmany(timeout_ms=100)
        await consumer.close()
    elif acl.operation == "read":
        assert await log.read(acl.name, 0, 0, timeout_ms=100) == []
        await log.end_offsets(acl.name)
    elif acl.operation == "write":
        await log.append([Message(acl.name, b"allowed", key=b"k")])
    else:
        assert (await log.topic_configs([acl.name]))[acl.name]["retention.ms"] in ("-1", "3600000", "604800000")


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_can_do_what_it_needs_and_nothing_more(secure_kafka: SecureKafka, secured_topics: Topics,
                                                              role: str) -> None:
    allowed = role_acls(secured_topics, role)
    log = await connect(secure_kafka, role, tls=role == "worker")
    try:
        for acl in allowed:
            await exercise(log, secured_topics, acl)
        granted = {(a.name, a.operation) for a in allowed}
        for spec in secured_topics.specs():
            if (spec.name, "read") not in granted:
                with pytest.raises(LogAuthorizationError):  # the fetch's refusal may take a moment
                    for _ in range(20):
                        await log.read(spec.name, 0, 0, timeout_ms=500)
        if role != "callbacks":  # a read-only principal has no producer at all
            for spec in secured_topics.specs():
                if (spec.name, "write") not in granted:
                    with pytest.raises(LogAuthorizationError):
                        await log.append([Message(spec.name, b"forged", key=b"k")])
    finally:
        await log.close()


async def test_a_worker_cannot_forge_assignments_or_elections_or_administer(secure_kafka: SecureKafka,
                                                                          secured_topics: Topics) -> None:
    worker = await connect(secure_kafka, "worker", tls=True)
    try:
        # it may read its assignments (so the broker tells it the topic exists), never write them
        assert await worker.read(secured_topics.assignment, 0, 0, timeout_ms=100) == []
        with pytest.raises(LogAuthorizationError, match="worker-assignments"):
            await worker.append([Message(secured_topics.assignment, b"AttemptAssigned to me", key=b"w2")])
        with pytest.raises(LogAuthorizationError):
            await worker.append([Message(secured_topics.control, b"SchedulerLeaderElected", key=b"x")])
        with pytest.raises(LogAuthorizationError):
            await worker.group_consumer(f"{secured_topics.prefix}resolver", [secured_topics.assignment])
        # and what it is for still works on the same connection
        await worker.append([Message(secured_topics.heartbeat, b"alive", key=b"w1")])
    finally:
        await worker.close()
    admin = await KafkaEventLog.connect(secure_kafka.bootstrap, security=secure_kafka.client("admin"))
    try:
        assert sum((await admin.end_offsets(secured_topics.assignment)).values()) == 0, "a forged assignment landed"
        assert sum((await admin.end_offsets(secured_topics.control)).values()) == 0
    finally:
        await admin.close()


async def test_a_worker_may_not_create_delete_or_reconfigure_topics(secure_kafka: SecureKafka,
                                                                  secured_topics: Topics) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    client = AIOKafkaAdminClient(bootstrap_servers=secure_kafka.external_bootstrap,
                                 **secure_kafka.client("worker", tls=True).client_kwargs())
    await client.start()
    try:
        created = await client.create_topics([NewTopic(f"{secured_topics.prefix}mine", 1, 1)])
        assert [e[1] for e in created.topic_errors] == [29]  # TOPIC_AUTHORIZATION_FAILED
        deleted = await client.delete_topics([secured_topics.batch])
        assert [e[1] for e in deleted.topic_error_codes] == [29]
        [altered] = await client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, secured_topics.batch,
                                                               {"retention.ms": "1000"})])
        assert [r[0] for r in altered.resources] == [29]
    finally:
        await client.close()
    admin = await KafkaEventLog.connect(secure_kafka.bootstrap, security=secure_kafka.client("admin"))
    try:
        assert (await admin.topic_configs([secured_topics.batch]))[secured_topics.batch]["retention.ms"] == "-1"
    finally:
        await admin.close()


@pytest.mark.parametrize("listener", ["loopback", "tls"])
async def test_a_client_without_credentials_is_refused(secure_kafka: SecureKafka, listener: str) -> None:
    bootstrap = secure_kafka.bootstrap if listener == "loopback" else secure_kafka.external_bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    with pytest.raises(Exception):  # noqa: B017 - the broker closes the connection: no error code to match
        await asyncio.wait_for(producer.start(), 20)
    with contextlib.suppress(Exception):
        await producer.stop()
    with pytest.raises(LogError, match="cannot connect"):
        await KafkaEventLog.connect(bootstrap, client_id="anonymous", request_timeout_ms=5000)


async def test_a_wrong_password_or_a_plaintext_client_on_the_tls_listener_is_refused(
        secure_kafka: SecureKafka) -> None:
    right = secure_kafka.client("worker", tls=True)
    wrong = KafkaSecurity(right.security_protocol, right.sasl_mechanism, "worker", "not-the-password", right.ca_file)
    with pytest.raises(LogError, match="cannot connect"):
        await KafkaEventLog.connect(secure_kafka.external_bootstrap, security=wrong, request_timeout_ms=5000)
    no_tls = secure_kafka.client("worker", tls=False)  # SCRAM without TLS on the TLS listener
    with pytest.raises(LogError, match="cannot connect"):
        await KafkaEventLog.connect(secure_kafka.external_bootstrap, security=no_tls, request_timeout_ms=5000)


async def test_the_tls_listener_is_refused_to_a_client_that_does_not_trust_its_ca(
        secure_kafka: SecureKafka, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from deploy.tls import CertificateAuthority

    stranger = CertificateAuthority.load_or_create(tmp_path / "other-ca")
    right = secure_kafka.client("worker", tls=True)
    untrusting = KafkaSecurity(right.security_protocol, right.sasl_mechanism, "worker", right.password,
                               str(stranger.cert_file))
    with pytest.raises(LogError, match="cannot connect"):
        await KafkaEventLog.connect(secure_kafka.external_bootstrap, security=untrusting, request_timeout_ms=5000)
