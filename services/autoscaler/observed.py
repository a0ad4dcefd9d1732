"""What the autoscaler reads from the log besides the scheduling view: zone outcomes, standing workers.

A listener on the StateFollower sees every instance event the view folds, from offset 0, so a
restarted autoscaler knows the same as the one before it:
- the outcome of each creation by zone (InstanceCreated with a zone = success; InstanceDeactivated
  `create_failed` with a zone = failure), for `events.core.zones`;
- which instances were requested as standing workers (their idle time and the minimum differ).
"""

from __future__ import annotations

from events.catalog import Event, InstanceCreated, InstanceDeactivated, InstanceRequested
from events.core.zones import ZoneOutcome, ZoneWindow

CREATE_FAILED = "create_failed"


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
