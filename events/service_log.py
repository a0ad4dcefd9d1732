"""How a long-running process opens the log: authenticated as its role, topics present, history durable.

    log = await open_service_log(config.bootstrap_servers, config.topics, "scheduler",
                                 client_id="scheduler-1", security=config.kafka_security)

Creates the topics that are missing (when the principal may; on a secured broker `squall up` has
created them as the administrator) and refuses to go on when a topic the role rebuilds from may
delete records (events/retention.py).
"""

from __future__ import annotations

import contextlib

from events.kafka_log import KafkaEventLog
from events.kafka_security import KafkaSecurity
from events.retention import require_durable_history
from events.topics import Topics


async def open_service_log(bootstrap: str, topics: Topics, role: str, *, client_id: str,
                           security: KafkaSecurity | None = None, create_topics: bool = True,
                           read_only: bool = False) -> KafkaEventLog:
    log = await KafkaEventLog.connect(bootstrap, client_id=client_id, security=security, read_only=read_only)
    try:
        if create_topics:
            await log.create_topics(topics.specs())
        await require_durable_history(log, topics, role)
    except BaseException:
        with contextlib.suppress(Exception):
            await log.close()
        raise
    return log
