"""The start-up check that refuses topics which would delete the history a service rebuilds from."""

from __future__ import annotations

import pytest

from deploy.kafka_acls import ROLES
from events.memory_log import KAFKA_DEFAULT_TOPIC_CONFIGS, MemoryEventLog
from events.retention import RetentionError, refolded_topics, require_durable_history, retention_problems
from events.topics import KEEP_FOREVER, LATEST_PER_KEY, Topics, TopicSpec


def test_what_squall_creates_keeps_everything_and_kafkas_default_does_not() -> None:
    assert retention_problems({"t": KEEP_FOREVER}) == []
    [problem] = retention_problems({"t": KAFKA_DEFAULT_TOPIC_CONFIGS})
    assert "7 days" in problem and "retention.ms=604800000" in problem


@pytest.mark.parametrize(("config", "says"), [
    ({"cleanup.policy": "delete", "retention.ms": "3600000", "retention.bytes": "-1"}, "1 hours"),
    ({"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "1073741824"}, "1073741824 bytes"),
    ({"cleanup.policy": "compact", "retention.ms": "-1", "retention.bytes": "-1"}, "newest event per key"),
    ({"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"}, "compacted"),
])
def test_each_way_of_losing_records_is_named(config: dict[str, str], says: str) -> None:
    [problem] = retention_problems({"squall.batch-events": config})
    assert problem.startswith("topic squall.batch-events:") and says in problem


def test_heartbeats_are_compacted_and_no_role_rebuilds_from_them() -> None:
    topics = Topics()
    assert retention_problems({topics.heartbeat: LATEST_PER_KEY}) != []
    assert all(topics.heartbeat not in refolded_topics(topics, role) for role in (*ROLES, "replay"))


async def test_a_service_refuses_topics_left_at_the_brokers_default_retention() -> None:
    topics = Topics(prefix="ext.")
    log = MemoryEventLog()  # a cluster someone else runs: topics created without squall's settings
    await log.create_topics([TopicSpec(s.name, s.partitions) for s in topics.specs()])
    with pytest.raises(RetentionError) as refused:
        await require_durable_history(log, topics, "scheduler")
    message = str(refused.value)
    for name in (topics.batch, topics.instance, topics.control):
        assert name in message
    assert "retention.ms=-1" in message and "kafka-configs" in message


async def test_one_changed_topic_is_enough_to_refuse_and_only_the_roles_that_need_it() -> None:
    topics = Topics(prefix="ok.")
    log = MemoryEventLog()
    await log.create_topics(topics.specs())
    for role in (*ROLES, "replay"):
        await require_durable_history(log, topics, role)
    log.alter_topic_configs(topics.assignment, {"retention.ms": "86400000"})
    with pytest.raises(RetentionError, match="worker-assignments"):
        await require_durable_history(log, topics, "worker")
    await require_durable_history(log, topics, "front")  # the front end does not rebuild from assignments
