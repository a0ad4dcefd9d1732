"""Scheduler leadership: the member of a consumer group that owns partition 0 of the control topic.

Kafka's group coordinator guarantees at most one owner per partition at a time (modulo session
timeouts), so it is the lock. The epoch is the fence: a new leader reads the control topic to its
end, appends `SchedulerLeaderElected(epoch = max + 1)`, and stamps every placement with it; the
resolver ignores placements of an older epoch once it has seen a newer one, so a paused old
leader that wakes up cannot double-place a job.
"""

from __future__ import annotations

import asyncio
import logging

from events.catalog import SchedulerLeaderElected
from events.codec import Codec
from events.envelope import derived_event_id
from events.log import EventLog, GroupConsumer
from events.publisher import Publisher

log = logging.getLogger(__name__)


class Leadership:
    def __init__(self, log_: EventLog, publisher: Publisher, scheduler_id: str, codec: Codec | None = None) -> None:
        self._log = log_
        self._publisher = publisher
        self._topic = publisher.topics.control
        self._group_id = f"{publisher.topics.prefix}scheduler-leader"
        self._codec = codec or Codec()
        self.scheduler_id = scheduler_id
        self._member: GroupConsumer | None = None
        self.epoch: int | None = None

    async def join(self) -> None:
        self._member = await self._log.group_consumer(self._group_id, [self._topic])

    def is_leader(self) -> bool:
        return self._member is not None and (self._topic, 0) in self._member.assignment()

    async def keep_alive(self) -> bool:
        """Poll the group (membership needs it) and report whether this member still leads."""
        assert self._member is not None, "call join() first"
        await self._member.getmany(timeout_ms=0)
        return self.is_leader()

    async def wait_until_leader(self, poll_ms: int = 500) -> None:
        assert self._member is not None, "call join() first"
        while True:
            await self._member.getmany(timeout_ms=poll_ms)  # records are irrelevant: only ownership
            if self.is_leader():
                return
            await asyncio.sleep(0)

    async def claim_epoch(self, now_ms: int) -> int:
        """Read every election so far and append the next epoch; returns it."""
        newest = await self.newest_epoch()
        epoch = newest + 1
        await self._publisher.publish([SchedulerLeaderElected(
            event_id=derived_event_id("SchedulerLeaderElected", epoch, self.scheduler_id),
            occurred_at=now_ms, producer=f"scheduler/{self.scheduler_id}", scheduler_id=self.scheduler_id,
            epoch=epoch)])
        self.epoch = epoch
        log.info("scheduler %s leads with epoch %d", self.scheduler_id, epoch)
        return epoch

    async def newest_epoch(self) -> int:
        end = (await self._log.end_offsets(self._topic)).get(0, 0)
        newest, offset = 0, 0
        while offset < end:
            records = await self._log.read(self._topic, 0, offset, timeout_ms=1000)
            if not records:
                break
            for record in records:
                event = self._codec.decode(record.value)
                if isinstance(event, SchedulerLeaderElected):
                    newest = max(newest, event.epoch)
            offset = records[-1].offset + 1
        return newest

    async def close(self) -> None:
        if self._member is not None:
            await self._member.close()
            self._member = None
