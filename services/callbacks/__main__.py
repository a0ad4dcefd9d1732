"""The callback service: `python -m services.callbacks --bootstrap ... --database-url ...`.

Applies its migration, then fires batch and job-group callbacks until SIGTERM or SIGINT.
Needs the read model (projections.readmodel) running against the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from events.errors import LogError
from events.service_log import open_service_log
from services import callback_policy
from services.callbacks.deliveries import apply_migrations
from services.callbacks.service import CallbackService, CallbackSettings
from services.config import (
    ConfigError,
    ServiceConfig,
    add_arguments,
    from_args,
    serve_metrics,
    stop_on_signals,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.callbacks", description=__doc__.splitlines()[0])
    add_arguments(parser)
    callback_policy.add_arguments(parser)
    return parser.parse_args(argv)


async def serve(config: ServiceConfig, settings: CallbackSettings) -> None:
    apply_migrations(config.database_url)
    log = await open_service_log(config.bootstrap_servers, config.topics, "callbacks", client_id="squall-callbacks",
                                 security=config.kafka_security, read_only=True)  # it only reads the log
    stop = stop_on_signals()
    try:
        await CallbackService(log, config.topics, config.database_url, settings).run(stop)
    finally:
        await log.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = from_args(args)
        settings = CallbackSettings(policy=callback_policy.CallbackPolicy.parse(args.callback_allowed_networks))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config)
    try:
        asyncio.run(serve(config, settings))
    except LogError as exc:  # e.g. a topic it rebuilds from may delete records
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
