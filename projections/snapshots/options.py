"""The command-line settings of a fold's snapshots, shared by the resolver, scheduler and autoscaler.

    add_snapshot_arguments(parser)
    store, settings = open_snapshots(args, database_url)    # (None, None): snapshots off

Snapshots need PostgreSQL (--database-url); without one, or with --no-snapshots, the fold refolds from
offset 0 at every start, as before.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from projections.snapshots.schedule import SnapshotSettings

if TYPE_CHECKING:
    from projections.snapshots.postgres import PostgresSnapshotStore

log = logging.getLogger(__name__)


def add_snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SnapshotSettings()
    parser.add_argument("--snapshot-interval", type=float, default=defaults.interval_s, metavar="SECONDS",
                        help="take a snapshot of the fold at least this often while the log moves (needs "
                             "--database-url)")
    parser.add_argument("--snapshot-max-tail", type=int, default=defaults.max_tail_records, metavar="RECORDS",
                        help="take one sooner once this many records were folded since the last")
    parser.add_argument("--no-snapshots", action="store_true",
                        help="never read or write snapshots: refold from offset 0 at every start")


def snapshot_settings(args: argparse.Namespace) -> SnapshotSettings:
    interval = getattr(args, "snapshot_interval", SnapshotSettings.interval_s)
    max_tail = getattr(args, "snapshot_max_tail", SnapshotSettings.max_tail_records)
    if interval < 0:
        raise ValueError(f"--snapshot-interval must be 0 or more, not {interval}")
    if max_tail < 1:
        raise ValueError(f"--snapshot-max-tail must be at least 1, not {max_tail}")
    return SnapshotSettings(interval_s=interval, max_tail_records=max_tail)


def open_snapshot_store(args: argparse.Namespace, database_url: str | None) -> PostgresSnapshotStore | None:
    """The PostgreSQL snapshot store (its tables migrated if this process may), or None when off."""
    if getattr(args, "no_snapshots", False):
        log.info("snapshots are off (--no-snapshots): every start refolds from offset 0")
        return None
    if not database_url:
        log.info("snapshots are off (no --database-url): every start refolds from offset 0")
        return None
    from projections.db import READMODEL_MIGRATIONS, migrate
    from projections.snapshots.postgres import PostgresSnapshotStore

    try:
        migrate(database_url, [READMODEL_MIGRATIONS])
    except Exception as exc:  # the store retries on its own; the tables may be made by another process
        log.warning("could not apply the read model's migrations (snapshot tables): %s", exc)
    return PostgresSnapshotStore(database_url)
