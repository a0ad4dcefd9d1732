"""Settings shared by every squall process, built once at start-up and passed down.

Every process takes the same flags (or SQUALL_* environment variables, read only in `from_env`):
  --bootstrap / SQUALL_KAFKA_BOOTSTRAP    Kafka bootstrap servers, e.g. 127.0.0.1:9092
  --topic-prefix / SQUALL_TOPIC_PREFIX    prefix of every topic (isolates stacks and tests)
  --database-url / SQUALL_DATABASE_URL    postgresql:// URL of the read models
  --home / SQUALL_HOME                    state directory (logs, pids, worker state), default ~/.squall
  --metrics-port / SQUALL_METRICS_PORT    serve Prometheus metrics on 127.0.0.1:PORT (0: off; the
                                          front end always serves /metrics on its own port)
  --storage-endpoint / SQUALL_STORAGE_ENDPOINT
                                          a GCS-API server's URL (the embedded fake-gcs-server);
                                          unset: real GCS with application-default credentials
  --system-bucket / SQUALL_SYSTEM_BUCKET  squall's own bucket: job logs, status, usage (no job may
                                          name it), default squall-system
  --kafka-credentials / SQUALL_KAFKA_CREDENTIALS
                                          JSON file with this process's Kafka principal (SASL/SCRAM,
                                          TLS CA); without it the connection is unauthenticated
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path

from events.kafka_security import KafkaCredentialsError, KafkaSecurity
from events.objectstore import ObjectStore, check_bucket_name
from events.topics import Topics

DEFAULT_SYSTEM_BUCKET = "squall-system"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the setting and what to set."""


@dataclass(frozen=True)
class ServiceConfig:
    bootstrap_servers: str
    database_url: str
    home: Path
    topic_prefix: str = "squall."
    metrics_port: int = 0
    storage_endpoint: str | None = None  # None: real GCS
    system_bucket: str = DEFAULT_SYSTEM_BUCKET
    kafka_security: KafkaSecurity | None = None

    @property
    def topics(self) -> Topics:
        return Topics(prefix=self.topic_prefix)

    def object_store(self) -> ObjectStore:
        """The store of squall's own bucket, as this process's identity (anonymous for a GCS-API server)."""
        from events.objectstore.gcs import GcsObjectStore

        return GcsObjectStore(endpoint=self.storage_endpoint)

    def with_overrides(self, **kw: object) -> ServiceConfig:
        return replace(self, **kw)  # type: ignore[arg-type]


def default_home() -> Path:
    return Path(os.environ.get("SQUALL_HOME") or Path.home() / ".squall")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=os.environ.get("SQUALL_KAFKA_BOOTSTRAP"),
                        help="Kafka bootstrap servers (SQUALL_KAFKA_BOOTSTRAP)")
    parser.add_argument("--topic-prefix", default=os.environ.get("SQUALL_TOPIC_PREFIX", "squall."),
                        help="prefix of every topic (SQUALL_TOPIC_PREFIX)")
    parser.add_argument("--database-url", default=os.environ.get("SQUALL_DATABASE_URL"),
                        help="postgresql:// URL of the read models (SQUALL_DATABASE_URL)")
    parser.add_argument("--home", default=str(default_home()), help="state directory (SQUALL_HOME)")
    parser.add_argument("--metrics-port", type=int, default=int(os.environ.get("SQUALL_METRICS_PORT") or 0),
                        help="serve Prometheus metrics on this loopback port; 0 turns it off (SQUALL_METRICS_PORT)")
    parser.add_argument("--storage-endpoint", default=os.environ.get("SQUALL_STORAGE_ENDPOINT") or None,
                        help="URL of a GCS-API server; unset: real GCS (SQUALL_STORAGE_ENDPOINT)")
    parser.add_argument("--system-bucket", default=os.environ.get("SQUALL_SYSTEM_BUCKET") or DEFAULT_SYSTEM_BUCKET,
                        help="squall's own bucket for logs, status and usage (SQUALL_SYSTEM_BUCKET)")
    parser.add_argument("--kafka-credentials", default=os.environ.get("SQUALL_KAFKA_CREDENTIALS"),
                        help="JSON file with this process's Kafka principal (SQUALL_KAFKA_CREDENTIALS)")


def from_args(args: argparse.Namespace, need_database: bool = True) -> ServiceConfig:
    if not args.bootstrap:
        raise ConfigError("Kafka is not configured: pass --bootstrap HOST:PORT or set SQUALL_KAFKA_BOOTSTRAP")
    if need_database and not args.database_url:
        raise ConfigError("PostgreSQL is not configured: pass --database-url postgresql://... "
                          "or set SQUALL_DATABASE_URL")
    bucket = getattr(args, "system_bucket", None) or DEFAULT_SYSTEM_BUCKET
    try:
        check_bucket_name(bucket)
    except ValueError as exc:
        raise ConfigError(f"--system-bucket: {exc}") from None
    endpoint = getattr(args, "storage_endpoint", None) or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ConfigError(f"--storage-endpoint must be an http:// or https:// URL, not {endpoint!r}")
    security = None
    credentials = getattr(args, "kafka_credentials", None)  # callers may build args by hand
    if credentials:
        try:
            security = KafkaSecurity.load(Path(credentials))
        except KafkaCredentialsError as exc:
            raise ConfigError(f"--kafka-credentials: {exc}") from exc
    # callers may build args by hand, without the newer settings
    return ServiceConfig(bootstrap_servers=args.bootstrap, database_url=args.database_url or "",
                         home=Path(args.home), topic_prefix=args.topic_prefix,
                         metrics_port=getattr(args, "metrics_port", 0), storage_endpoint=endpoint,
                         system_bucket=bucket, kafka_security=security)


def serve_metrics(config: ServiceConfig, addr: str = "127.0.0.1") -> None:
    """Start the Prometheus endpoint when --metrics-port asks for one (on loopback unless told)."""
    if config.metrics_port:
        from events.process.metrics import start_metrics_server

        start_metrics_server(config.metrics_port, addr=addr)
