"""Scheduler leadership on the in-memory log: one leader at a time, and each term a higher epoch."""

from __future__ import annotations

from events.codec import Codec
from events.publisher import Publisher
from services.scheduler.leadership import Leadership


async def test_the_owner_of_partition_0_leads_and_a_successor_claims_the_next_epoch(memory_log, topics) -> None:
    publisher = Publisher(memory_log, topics, Codec())
    first, second = Leadership(memory_log, publisher, "A"), Leadership(memory_log, publisher, "B")
    await first.join()
    await second.join()
    assert [first.is_leader(), second.is_leader()] == [True, False]
    assert await first.claim_epoch(now_ms=1) == 1
    await first.close()  # A dies; the group gives partition 0 to B
    await second.wait_until_leader(poll_ms=10)
    assert await second.keep_alive()
    assert await second.claim_epoch(now_ms=2) == 2
    assert await Leadership(memory_log, publisher, "C").newest_epoch() == 2
    await second.close()
