"""Running the read-model projection over a log: the live process and replay share this."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from events.kafka_log import KafkaEventLog
from events.log import EventLog
from events.topics import Topics
from projections.cost import PriceTable
from projections.lag import report_lag
from projections.reader import KafkaPartitionReader, PartitionReader
from projections.readmodel.bulk import DEFAULT_MAX_HELD_JOBS, BulkReadModelProjection
from projections.readmodel.projection import NAME, ReadModelProjection
from projections.runner import Runner, RunnerSettings, TopicPartition


def readmodel_runner(log: EventLog, topics: Topics, database_url: str, schema: str = "public",
                     prices: PriceTable | None = None, settings: RunnerSettings | None = None,
                     bulk_until: dict[TopicPartition, int] | None = None,
                     max_held_jobs: int = DEFAULT_MAX_HELD_JOBS) -> Runner:
    """A runner folding the batch, instance and heartbeat topics into the read-model tables of `schema`.
    `bulk_until`: rebuild mode (projections/readmodel/bulk.py) up to these offsets, into a fresh
    schema that `bulk.prepare_schema` prepared, holding at most about `max_held_jobs` jobs per worker."""

    async def open_projection() -> ReadModelProjection:
        if bulk_until is not None:
            return await BulkReadModelProjection.open_bulk(database_url, schema, bulk_until, prices, max_held_jobs)
        return await ReadModelProjection.open(database_url, schema=schema, prices=prices)

    open_reader = None
    if isinstance(log, KafkaEventLog):  # one consumer per worker over its partitions (see projections.reader)
        bootstrap, security = log.bootstrap, log.security

        async def open_reader(share: Sequence[TopicPartition]) -> PartitionReader:
            return await KafkaPartitionReader.open(bootstrap, share, client_id=f"squall-{NAME}-{schema}",
                                                   security=security)

    return Runner(log, list(topics.fold_topics), open_projection, quarantine_topic=topics.quarantine,
                  settings=settings, open_reader=open_reader)


async def run_readmodel(log: EventLog, topics: Topics, database_url: str, schema: str = "public",
                        prices: PriceTable | None = None, settings: RunnerSettings | None = None,
                        stop: asyncio.Event | None = None, until: dict[TopicPartition, int] | None = None,
                        shard: tuple[int, int] | None = None, bulk: bool = False,
                        max_held_jobs: int = DEFAULT_MAX_HELD_JOBS,
                        lag_report: Callable[[int], None] | None = None) -> Runner:
    """Fold until `stop` (or `until`). `bulk`: in rebuild mode, which needs `until` and a fresh
    schema prepared by `bulk.prepare_schema`; it raises `bulk.BulkRebuildFailed` on poison.
    `lag_report`: called every few seconds with the events not yet applied (projections.lag)."""
    if bulk and until is None:
        raise ValueError("rebuild mode (bulk) needs the offsets to stop at (until)")
    runner = readmodel_runner(log, topics, database_url, schema, prices, settings, bulk_until=until if bulk else None,
                              max_held_jobs=max_held_jobs)
    stop = stop or asyncio.Event()
    lag = (asyncio.create_task(report_lag(log, lambda: runner.positions, lag_report, stop))
           if lag_report is not None else None)
    try:
        await runner.run(stop=stop, until=until, shard=shard)
    finally:
        if lag is not None:
            lag.cancel()
    return runner
