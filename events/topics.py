"""Topic names and partition counts. A prefix isolates one stack (or one test) from another."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


@dataclass(frozen=True)
class Topics:
    """The log's topics for one squall installation.

    batch:      keyed by batch_id — every batch/job event, so one job's transitions are totally ordered.
    instance:   keyed by instance name — requested/created/activated/heartbeat/deactivated/deleted.
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
    def assignment(self) -> str:
        return f"{self.prefix}worker-assignments"

    @property
    def control(self) -> str:
        return f"{self.prefix}scheduler-control"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}quarantine"

    def for_event_topic(self, logical: str) -> str:
        """Map an event class's TOPIC ('batch', 'instance', 'assignment', 'control') to a topic name."""
        return {"batch": self.batch, "instance": self.instance, "assignment": self.assignment,
                "control": self.control}[logical]

    def specs(self) -> list[TopicSpec]:
        return [
            TopicSpec(self.batch, self.batch_partitions),
            TopicSpec(self.instance, self.instance_partitions),
            TopicSpec(self.assignment, self.assignment_partitions),
            TopicSpec(self.control, 1),
            TopicSpec(self.quarantine, 1),
        ]
