"""report_lag: a projection process reports how many events of its partitions it has not applied yet."""

from __future__ import annotations

import asyncio

from events.log import Message
from projections.lag import report_lag
from tests.eventually import eventually


async def test_the_lag_is_the_log_end_minus_the_positions_summed_over_owned_partitions(memory_log, topics) -> None:
    batch, n_partitions = topics.batch, await memory_log.partitions(topics.batch)
    await memory_log.append([Message(batch, b"x", key=str(k).encode()) for k in range(40)])
    ends = await memory_log.end_offsets(batch)
    owned = {(batch, p): 0 for p in range(n_partitions)}
    reported: list[int] = []
    stop = asyncio.Event()
    task = asyncio.create_task(report_lag(memory_log, lambda: owned, reported.append, stop, every_s=0.01))
    await eventually(lambda: reported and reported[-1] == 40, what="the whole log reported as lag")
    owned.update({(batch, p): end for p, end in ends.items() if p % 2 == 0})  # half the partitions caught up
    owned[(batch, 1)] = ends[1] + 5  # a position read past the end offsets we got: never negative
    behind = sum(end for p, end in ends.items() if p % 2 == 1 and p != 1)
    await eventually(lambda: reported[-1] == behind, what=f"a lag of {behind}")
    stop.set()
    await asyncio.wait_for(task, 1)


async def test_nothing_is_reported_before_the_process_owns_a_partition(memory_log, topics) -> None:
    reported: list[int] = []
    looked: list[int] = []

    def owned() -> dict:
        looked.append(1)
        return {}

    stop = asyncio.Event()
    task = asyncio.create_task(report_lag(memory_log, owned, reported.append, stop, every_s=0.01))
    await eventually(lambda: len(looked) >= 3, what="three rounds of the reporter")  # it looked, and said nothing
    stop.set()
    await asyncio.wait_for(task, 1)
    assert reported == []
