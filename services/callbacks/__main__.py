"""The callback service: `python -m services.callbacks --bootstrap ... --database-url ...`.

Applies its migration, then fires batch and job-group callbacks until SIGTERM or SIGINT.
Needs the read model (projections.readmodel) running against the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from events.process.config import ConfigError, ServiceConfig, add_arguments, from_args, serve_metrics
from events.process.run import run_process
from events.service_log import open_service_log
from services import callback_policy
from services.callbacks.deliveries import apply_migrations
from services.callbacks.service import CallbackService, CallbackSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.callbacks", description=__doc__.splitlines()[0])
    add_arguments(parser)
    callback_policy.add_arguments(parser)
    return parser.parse_args(argv)


async def serve(config: ServiceConfig, settings: CallbackSettings, stop: asyncio.Event) -> None:
    apply_migrations(config.database_url)
    log = await open_service_log(config.bootstrap_servers, config.topics, "callbacks", client_id="squall-callbacks",
                                 security=config.kafka_security, read_only=True)  # it only reads the log
    try:
        await CallbackService(log, config.topics, config.database_url, settings).run(stop)
    finally:
        await log.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = from_args(args)
        settings = CallbackSettings(policy=callback_policy.CallbackPolicy.parse(args.callback_allowed_networks))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve_metrics(config)
    return run_process(lambda stop: serve(config, settings, stop), prog="python -m services.callbacks")


if __name__ == "__main__":
    sys.exit(main())
