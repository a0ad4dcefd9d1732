"""Running the read-model projection over a log: the live process and replay share this."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from events.kafka_log import KafkaEventLog
from events.log import EventLog
from events.topics import Topics
from projections.cost import PriceTable
from projections.reader import KafkaPartitionReader, PartitionReader
from projections.readmodel.projection import NAME, ReadModelProjection
from projections.runner import Runner, RunnerSettings, TopicPartition


def readmodel_runner(log: EventLog, topics: Topics, database_url: str, schema: str = "public",
                     prices: PriceTable | None = None, settings: RunnerSettings | None = None) -> Runner:
    """A runner folding the batch, instance and heartbeat topics into the read-model tables of `schema`."""

    async def open_projection() -> ReadModelProjection:
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
                        shard: tuple[int, int] | None = None) -> Runner:
    runner = readmodel_runner(log, topics, database_url, schema, prices, settings)
    await runner.run(stop=stop, until=until, shard=shard)
    return runner
