"""What the autoscaler reads from the log besides the scheduling view: zone outcomes, standing workers.

A listener on the StateFollower sees every instance event the view folds; when the view starts from
a snapshot, `observe_before` first feeds it the instance events the snapshot covers (the instance topic
alone, from offset 0: a few events per instance, unlike the batch topic), so a restarted autoscaler
knows the same as the one before it:
- the outcome of each creation by zone (InstanceCreated with a zone = success; InstanceDeactivated
  `create_failed` with a zone = failure), for `events.core.zones`;
- which instances were requested as standing workers (their idle time and the minimum differ).
"""

from __future__ import annotations

import logging

from events.catalog import Event, InstanceCreated, InstanceDeactivated, InstanceRequested
from events.codec import Codec
from events.core.zones import ZoneOutcome, ZoneWindow
from events.errors import DecodeError
from events.log import EventLog

CREATE_FAILED = "create_failed"
OBSERVED_EVENT_NAMES = frozenset({"InstanceRequested", "InstanceCreated", "InstanceDeactivated"})

log = logging.getLogger(__name__)


class Observed:
    def __init__(self) -> None:
        self.zones = ZoneWindow()
        self.standing: set[str] = set()
        self.requested_zone: dict[str, str] = {}

    def __call__(self, event: Event, _woke: bool) -> None:
        if isinstance(event, InstanceRequested):
            if event.standing:
                self.standing.add(event.instance_name)
            if event.zone:
                self.requested_zone[event.instance_name] = event.zone
        elif isinstance(event, InstanceCreated):
            zone = event.zone or self.requested_zone.get(event.instance_name)
            if zone:
                self.zones.push(ZoneOutcome(zone, event.instance_name, True))
        elif isinstance(event, InstanceDeactivated) and event.reason == CREATE_FAILED:
            zone = event.zone or self.requested_zone.get(event.instance_name)
            if zone:
                self.zones.push(ZoneOutcome(zone, event.instance_name, False))

    def forget_except(self, live_names: set[str]) -> None:
        """Drop what is kept per instance once the view no longer holds the instance."""
        self.standing &= live_names
        for name in [n for n in self.requested_zone if n not in live_names]:
            del self.requested_zone[name]


async def observe_before(log_: EventLog, topic: str, positions: dict[tuple[str, int], int], codec: Codec,
                         observed: Observed) -> int:
    """Feed `observed` the records of `topic` below `positions` (where a view from a snapshot starts);
    the number of records read. Nothing to do for a view that starts at offset 0."""
    targets = {tp: end for tp, end in positions.items() if tp[0] == topic and end > 0}
    if not targets:
        return 0
    consumer = await log_.assigned_consumer({tp: 0 for tp in targets})
    read = dict.fromkeys(targets, 0)
    n = 0
    try:
        while any(read[tp] < end for tp, end in targets.items()):
            for record in await consumer.getmany(timeout_ms=200, max_records=5000):
                tp = (record.topic, record.partition)
                if record.offset >= targets[tp]:
                    continue  # the view folds it
                read[tp] = record.offset + 1
                n += 1
                if codec.event_name_of(record.value) not in OBSERVED_EVENT_NAMES:
                    continue
                try:
                    event = codec.decode(record.value)
                except DecodeError as exc:  # as the view does: skipped, said
                    log.warning("skipping undecodable record %s[%d]@%d: %s", *tp, record.offset, exc)
                    continue
                observed(event, False)
    finally:
        await consumer.close()
    return n
