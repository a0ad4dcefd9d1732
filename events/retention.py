"""Refuse to run on topics that forget.

Every service rebuilds its state by folding the log from the start (or from a snapshot's offsets),
replay rebuilds the read models from offset 0, and the audit trail points at offsets. A topic with
finite retention (Kafka's default is 7 days) or with compaction silently deletes that history, and
the damage shows only weeks later as a wrong refold. So each process checks, at start, the topics it
rebuilds from, and stops with a message that says which setting to change.

    await require_durable_history(log, topics, "scheduler")   # raises RetentionError
"""

from __future__ import annotations

from collections.abc import Mapping

from events.errors import LogError
from events.log import EventLog
from events.topics import KEEP_FOREVER, Topics


class RetentionError(LogError):
    """A topic a service rebuilds from may delete records; the message names it and the fix."""


def refolded_topics(topics: Topics, role: str) -> tuple[str, ...]:
    """The topics whose whole history `role` needs (it folds them from the start, or reads old offsets)."""
    by_role = {
        "front": (topics.batch,),  # the audit trail reads events at their offsets
        "resolver": (topics.batch,),
        "readmodel": (topics.batch, topics.instance),
        "scheduler": (topics.batch, topics.instance, topics.control),
        "autoscaler": (topics.batch, topics.instance),
        "callbacks": (topics.batch,),
        "worker": (topics.assignment,),
        "replay": (topics.batch, topics.instance),
    }
    return by_role[role]


def retention_problems(configs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What makes each topic lose records, one sentence per topic; [] when every one keeps everything."""
    problems = []
    for topic, config in sorted(configs.items()):
        found = []
        policy = config.get("cleanup.policy", "delete")
        if "compact" in policy.split(","):
            found.append(f"it is compacted (cleanup.policy={policy}), which keeps only the newest event per key")
        if "delete" in policy.split(","):
            retention_ms = int(config.get("retention.ms", "604800000"))
            if retention_ms >= 0:
                found.append(f"it deletes records after {_duration(retention_ms)} (retention.ms={retention_ms})")
            retention_bytes = int(config.get("retention.bytes", "-1"))
            if retention_bytes >= 0:
                found.append(f"it keeps at most {retention_bytes} bytes per partition (retention.bytes={retention_bytes})")
        if found:
            problems.append(f"topic {topic}: " + "; ".join(found))
    return problems


async def require_durable_history(log: EventLog, topics: Topics, role: str) -> None:
    """Raise RetentionError when a topic `role` rebuilds from may delete records."""
    names = refolded_topics(topics, role)
    problems = retention_problems(await log.topic_configs(names))
    if problems:
        fix = ",".join(f"{k}={v}" for k, v in KEEP_FOREVER.items())
        raise RetentionError(
            f"the {role} rebuilds its state from the whole history of {', '.join(names)}, but "
            + "; ".join(problems)
            + f". Set {fix} on each, e.g. kafka-configs.sh --bootstrap-server BROKER --alter "
            f"--entity-type topics --entity-name TOPIC --add-config {fix}")


def _duration(ms: int) -> str:
    for unit, size in (("days", 86_400_000), ("hours", 3_600_000), ("minutes", 60_000), ("seconds", 1000)):
        if ms >= size:
            return f"{ms / size:g} {unit}"
    return f"{ms} ms"

