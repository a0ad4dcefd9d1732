"""Run the health check against a live SchedulingState and append what it finds.

It runs inside the scheduler's leader (the state is already folded there). An event it appended
is not appended again until the log has had time to bring it back (`resend_after_ms`), so a
slow round trip does not flood the log, yet a lost append is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from events.catalog import InstanceDeactivated, JobAttemptCompleted
from events.publisher import Publisher
from projections.scheduling.state import SchedulingState
from services.health.detector import HealthSettings, lost_instance_events

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(self, publisher: Publisher, state: SchedulingState, clock: Callable[[], int],
                 settings: HealthSettings | None = None, resend_after_ms: int = 30_000) -> None:
        self._publisher = publisher
        self._state = state
        self._clock = clock
        self.settings = settings or HealthSettings()
        self._resend_after_ms = resend_after_ms
        self._sent: dict[str, int] = {}  # event id -> when appended
        self.n_deactivated = 0
        self.n_attempts_ended = 0

    async def check(self) -> int:
        """One pass; returns how many events were appended."""
        now = self._clock()
        self._sent = {k: t for k, t in self._sent.items() if now - t < self._resend_after_ms}
        fresh = [e for e in lost_instance_events(self._state, now, self.settings) if e.event_id not in self._sent]
        if not fresh:
            return 0
        await self._publisher.publish(fresh)
        for event in fresh:
            self._sent[event.event_id] = now
            if isinstance(event, InstanceDeactivated):
                self.n_deactivated += 1
                log.warning("instance %s deactivated: %s", event.instance_name, event.reason)
            elif isinstance(event, JobAttemptCompleted):
                self.n_attempts_ended += 1
        return len(fresh)
