"""Topics on a real broker: squall creates them keeping everything, and a service refuses to start on
a topic someone else created with finite retention (as an external cluster's default would)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from deploy.kafka_acls import ROLES
from events.kafka_log import KafkaEventLog
from events.retention import RetentionError
from events.service_log import open_service_log
from events.topics import Topics, TopicSpec

pytestmark = [pytest.mark.kafka]

WEEK_MS = "604800000"


async def test_every_role_starts_on_topics_squall_created(kafka_bootstrap: str, topics: Topics) -> None:
    for role in ROLES:
        log = await open_service_log(kafka_bootstrap, topics, role, client_id=f"t-{role}")
        await log.close()
    admin = await KafkaEventLog.connect(kafka_bootstrap)
    try:
        configs = await admin.topic_configs([topics.batch, topics.assignment, topics.heartbeat])
    finally:
        await admin.close()
    assert (configs[topics.batch]["retention.ms"], configs[topics.batch]["retention.bytes"]) == ("-1", "-1")
    assert configs[topics.assignment]["cleanup.policy"] == "delete"
    assert configs[topics.heartbeat]["cleanup.policy"] == "compact"


async def test_a_service_refuses_topics_an_external_cluster_created_with_a_weeks_retention(
        kafka_bootstrap: str, topics: Topics) -> None:
    log = await KafkaEventLog.connect(kafka_bootstrap)
    try:  # what a cluster left at Kafka's defaults gives a topic created by someone else
        await log.create_topics([TopicSpec(s.name, s.partitions, {"retention.ms": WEEK_MS}) for s in topics.specs()])
    finally:
        await log.close()
    with pytest.raises(RetentionError, match="batch-events.*retention.ms=604800000"):
        await open_service_log(kafka_bootstrap, topics, "resolver", client_id="t-resolver")

    for module, extra in (("services.scheduler", []), ("worker", ["--instance-name", "w", "--cores", "1",
                                                                   "--memory-gib", "1", "--storage-gib", "1"])):
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", module, "--bootstrap", kafka_bootstrap, "--topic-prefix",
                             topics.prefix, *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (module, proc.stdout[-2000:], proc.stderr[-2000:])
        assert "deletes records after 7 days" in proc.stderr and "retention.ms=-1" in proc.stderr, proc.stderr[-2000:]
