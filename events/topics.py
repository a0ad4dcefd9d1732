"""Topic names, partition counts and retention. A prefix isolates one stack (or one test) from another.

Every topic squall creates carries explicit settings, never the cluster's defaults (Kafka's default
keeps 7 days, which would delete the history every refold, replay and audit reads):
- batch, instance, assignment, control and quarantine keep everything forever (delete policy with
  retention.ms = retention.bytes = -1). Services refold their state from them.
- heartbeats are compacted by instance name: the newest heartbeat of each instance survives, which is
  all the health check needs; no refold needs an older one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

KEEP_FOREVER: Mapping[str, str] = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
# compaction only runs on closed segments: roll hourly so old heartbeats go within hours, not weeks
LATEST_PER_KEY: Mapping[str, str] = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000),
                                     "min.cleanable.dirty.ratio": "0.5"}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    """The log's topics for one squall installation.

    batch:      keyed by batch_id — every batch/job event, so one job's transitions are totally ordered.
    instance:   keyed by instance name — requested/created/activated/deactivated/deleted; and the
                autoscaler's PoolScalingDecided, keyed by pool (so its readers must not assume an
                instance_name on every event of this topic).
    heartbeat:  keyed by instance name — liveness only (compacted: the newest per instance is kept).
    assignment: keyed by instance name — what a worker must run or kill; a worker reads one partition.
    control:    one partition — scheduler leader election (epochs).
    quarantine: messages that could not be decoded or applied, with the reason in headers.
    """

    prefix: str = "squall."
    batch_partitions: int = 8
    instance_partitions: int = 4
    assignment_partitions: int = 8

    @property
    def batch(self) -> str:
        return f"{self.prefix}batch-events"

    @property
    def instance(self) -> str:
        return f"{self.prefix}instance-events"

    @property
    def heartbeat(self) -> str:
        return f"{self.prefix}instance-heartbeats"

    @property
    def assignment(self) -> str:
        return f"{self.prefix}worker-assignments"

    @property
    def control(self) -> str:
        return f"{self.prefix}scheduler-control"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}quarantine"

    @property
    def fold_topics(self) -> tuple[str, str, str]:
        """What the scheduling view and the read model fold: every batch and instance event."""
        return (self.batch, self.instance, self.heartbeat)

    def for_event_topic(self, logical: str) -> str:
        """Map an event class's TOPIC ('batch', 'instance', 'heartbeat', 'assignment', 'control') to a name."""
        return {"batch": self.batch, "instance": self.instance, "heartbeat": self.heartbeat,
                "assignment": self.assignment, "control": self.control}[logical]

    def specs(self) -> list[TopicSpec]:
        return [
            TopicSpec(self.batch, self.batch_partitions, KEEP_FOREVER),
            TopicSpec(self.instance, self.instance_partitions, KEEP_FOREVER),
            TopicSpec(self.heartbeat, self.instance_partitions, LATEST_PER_KEY),
            TopicSpec(self.assignment, self.assignment_partitions, KEEP_FOREVER),
            TopicSpec(self.control, 1, KEEP_FOREVER),
            TopicSpec(self.quarantine, 1, KEEP_FOREVER),
        ]
