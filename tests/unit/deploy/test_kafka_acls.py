"""The ACL table: each role gets what it needs and nothing else (the broker tests prove it is enforced)."""

from __future__ import annotations

from deploy.kafka_acls import ROLES, kafka_acls_commands, role_acls, stack_acls
from events.topics import Topics

T = Topics(prefix="p.")


def ops(role: str) -> set[tuple[str, str, str]]:
    return {(a.resource, a.name, a.operation) for a in role_acls(T, role)}


def test_a_worker_reads_its_assignments_writes_attempt_and_instance_events_and_administers_nothing() -> None:
    assert ops("worker") == {
        ("topic", T.assignment, "read"), ("topic", T.assignment, "describe_configs"),
        ("topic", T.batch, "write"), ("topic", T.instance, "write"), ("topic", T.heartbeat, "write")}


def test_only_the_resolver_writes_assignments_and_only_the_scheduler_elects_leaders() -> None:
    writers = {(a.name, a.principal) for a in stack_acls(T) if a.operation == "write"}
    assert {p for n, p in writers if n == T.assignment} == {"User:resolver"}
    assert {p for n, p in writers if n == T.control} == {"User:scheduler"}
    assert {p for n, p in writers if n == T.quarantine} == {"User:resolver", "User:readmodel"}


def test_nobody_may_read_the_quarantine_create_topics_or_alter_anything() -> None:
    acls = stack_acls(T)
    assert not any(a.name == T.quarantine and a.operation == "read" for a in acls)
    assert {a.operation for a in acls} <= {"read", "write", "describe_configs"}
    assert {a.resource for a in acls} == {"topic", "group"}


def test_consumer_groups_are_each_roles_own() -> None:
    groups = {(a.principal, a.name, a.pattern) for a in stack_acls(T) if a.resource == "group"}
    assert groups == {("User:resolver", "p.resolver", "literal"), ("User:callbacks", "p.callbacks", "literal"),
                      ("User:scheduler", "p.scheduler-leader", "literal"),
                      ("User:scheduler", "p.scheduler-view.", "prefixed"),
                      ("User:autoscaler", "p.autoscaler-view.", "prefixed")}


def test_every_role_may_describe_the_configuration_of_what_it_rebuilds_from() -> None:
    for role in ROLES:
        assert any(a.operation == "describe_configs" for a in role_acls(T, role)), role


def test_the_same_table_as_kafka_acls_commands_for_an_operators_cluster() -> None:
    text = kafka_acls_commands(role_acls(T, "scheduler"), "broker:9092", "admin.properties")
    assert "--allow-principal User:scheduler --operation Read --group p.scheduler-view. " \
           "--resource-pattern-type prefixed" in text
    assert "--operation DescribeConfigs --topic p.scheduler-control" in text
    assert len(text.splitlines()) == len(role_acls(T, "scheduler"))


def test_the_autoscaler_appends_its_pool_decisions_and_every_fold_of_the_instance_topic_reads_them() -> None:
    from events.catalog import InstanceRequested, PoolScalingDecided

    for event in (PoolScalingDecided, InstanceRequested):  # what the autoscaler appends
        topic = T.for_event_topic(event.TOPIC)
        assert ("topic", topic, "write") in ops("autoscaler"), event.SCHEMA_NAME
        for reader in ("readmodel", "scheduler", "autoscaler"):  # they fold the instance topic
            assert ("topic", topic, "read") in ops(reader), (event.SCHEMA_NAME, reader)
