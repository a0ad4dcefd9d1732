"""Admin commands (`squall user`, `squall billing-project`, and any other command built on
services/cli/front_db.py) use the local stack's database when no --database-url is given, as
`squall replay` does: `squall user create NAME` works right after `squall up`."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from deploy.stack import StackState
from services.cli import app

pytestmark = pytest.mark.postgres


def _local_stack(home: Path, database_url: str) -> Path:
    """What `squall up` leaves in its home: stack.json naming the stack's database."""
    home.mkdir(parents=True, exist_ok=True)
    StackState(home=str(home), api_url="http://127.0.0.1:1", token="", billing_project="default",
               bootstrap="127.0.0.1:1", database_url=database_url, topic_prefix="t.", port=1,
               embedded_kafka=False, embedded_postgres=False).save()
    return home


def _invoke(args: list[str], **env: str | None) -> object:
    import services.cli.billing  # noqa: F401  (registers the command groups)
    import services.cli.users  # noqa: F401

    return CliRunner().invoke(app, args, env={"SQUALL_DATABASE_URL": None, **env})


def test_user_and_billing_commands_default_to_the_local_stacks_database(fresh_db: str, tmp_path: Path) -> None:
    home = _local_stack(tmp_path / "stack", fresh_db)
    made = _invoke(["user", "create", "frank", "--home", str(home)])
    assert made.exit_code == 0, made.output  # type: ignore[attr-defined]
    via_env = _invoke(["user", "create", "gina"], SQUALL_HOME=str(home))
    assert via_env.exit_code == 0, via_env.output  # type: ignore[attr-defined]
    limit = _invoke(["billing-project", "set-limit", "frank", "5"], SQUALL_HOME=str(home))
    assert limit.exit_code == 0, limit.output  # type: ignore[attr-defined]
    shown = _invoke(["billing-project", "show", "frank", "--home", str(home)])
    assert shown.exit_code == 0 and "limit $5.0000" in shown.output, shown.output  # type: ignore[attr-defined]
    listed = _invoke(["user", "tokens", "frank"], SQUALL_HOME=str(home))
    assert listed.exit_code == 0 and "active" in listed.output, listed.output  # type: ignore[attr-defined]
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT name FROM front_users ORDER BY name").fetchall() == [("frank",), ("gina",)]


def test_without_a_database_or_a_stack_the_error_says_how_to_give_one(tmp_path: Path) -> None:
    result = _invoke(["user", "create", "hank", "--home", str(tmp_path / "nothing-here")])
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--database-url" in result.output and "squall up" in result.output  # type: ignore[attr-defined]


def test_an_explicit_database_url_wins_over_the_stack(fresh_db: str, tmp_path: Path) -> None:
    home = _local_stack(tmp_path / "stack", "postgresql://nobody@127.0.0.1:1/none")
    result = _invoke(["user", "create", "ivy", "--home", str(home), "--database-url", fresh_db])
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
