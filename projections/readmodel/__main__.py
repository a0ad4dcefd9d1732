"""The live read-model projector: `python -m projections.readmodel --bootstrap ... --database-url ...`.

Applies pending migrations, then folds the batch and instance topics into Postgres until SIGTERM
or SIGINT. It may be killed at any moment (even SIGKILL): offsets are stored with the rows, so a
restart resumes exactly where the last committed transaction ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from functools import partial

from events.process.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from events.process.metrics import set_projection_lag
from events.process.run import run_process
from events.service_log import open_service_log
from projections.cost import PriceTable
from projections.db import READMODEL_MIGRATIONS, migrate
from projections.readmodel.bulk import BULK_FAILED, DEFAULT_MAX_HELD_JOBS, BulkRebuildFailed
from projections.readmodel.projection import NAME
from projections.readmodel.service import run_readmodel
from projections.runner import RunnerSettings, TopicPartition, tune_gc_for_batches


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m projections.readmodel", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--schema", default="public", help="Postgres schema of the read models")
    parser.add_argument("--prices", default=None, help="YAML price table (see projections/cost.py)")
    parser.add_argument("--workers", type=int, default=RunnerSettings.workers,
                        help="parallel workers (partitions are dealt among them)")
    parser.add_argument("--max-batch", type=int, default=RunnerSettings.max_batch,
                        help="records per transaction")
    parser.add_argument("--shard", type=_shard, default=None, metavar="I/N",
                        help="only partitions I, I+N, I+2N, ... (run N processes to spread the work)")
    parser.add_argument("--until-json", default=None,
                        help='replay: stop at these offsets, {"topic:partition": offset, ...}')
    parser.add_argument("--bulk", action="store_true",
                        help="replay: rebuild mode into a fresh schema prepared by the parent (needs --until-json); "
                             f"exits with {BULK_FAILED} if a record needs the live projection")
    parser.add_argument("--max-held-jobs", type=int, default=DEFAULT_MAX_HELD_JOBS,
                        help="--bulk: jobs each worker holds in memory before it writes and drops some")
    parser.add_argument("--no-publish-quarantine", action="store_true",
                        help="replay: quarantine into the table only (the live projector published them)")
    return parser.parse_args(argv)


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: expected I/N, e.g. 0/2") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: I must be in 0..N-1")
    return index, count


def parse_until(text: str) -> dict[TopicPartition, int]:
    return {(key.rsplit(":", 1)[0], int(key.rsplit(":", 1)[1])): int(offset)
            for key, offset in json.loads(text).items()}


async def serve(config: ServiceConfig, schema: str, prices: PriceTable, settings: RunnerSettings,
                shard: tuple[int, int] | None = None, until: dict[TopicPartition, int] | None = None,
                bulk: bool = False, max_held_jobs: int = DEFAULT_MAX_HELD_JOBS, *, stop: asyncio.Event) -> None:
    migrate(config.database_url, [READMODEL_MIGRATIONS], schema=schema)
    log = await open_service_log(config.bootstrap_servers, config.topics, "readmodel", client_id="squall-readmodel",
                                 security=config.kafka_security)
    try:
        await run_readmodel(log, config.topics, config.database_url, schema, prices, settings, stop=stop,
                            until=until, shard=shard, bulk=bulk, max_held_jobs=max_held_jobs,
                            lag_report=partial(set_projection_lag, NAME) if until is None else None)
    finally:
        await log.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = from_args(args)
        prices = PriceTable.from_yaml(args.prices) if args.prices else PriceTable()
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config)
    settings = RunnerSettings(workers=args.workers, max_batch=args.max_batch,
                              publish_quarantine=not args.no_publish_quarantine)
    until = parse_until(args.until_json) if args.until_json else None
    if args.bulk and until is None:
        print("error: --bulk needs --until-json", file=sys.stderr)
        return 2
    tune_gc_for_batches()
    try:
        return run_process(lambda stop: serve(config, args.schema, prices, settings, args.shard, until, args.bulk,
                                              args.max_held_jobs, stop=stop), prog="python -m projections.readmodel")
    except BulkRebuildFailed as exc:
        print(f"rebuild mode cannot apply this log: {exc}", file=sys.stderr)
        return BULK_FAILED


if __name__ == "__main__":
    sys.exit(main())
