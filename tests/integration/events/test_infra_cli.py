"""`squall kafka …` and `squall postgres …` through the real command line app."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import services.cli.infra  # noqa: F401  (registers the commands on the app)
from services.cli import app

runner = CliRunner()


def test_status_of_a_never_started_home_is_stopped_with_exit_3(tmp_path: Path) -> None:
    for server in ("kafka", "postgres"):
        result = runner.invoke(app, [server, "status", "--home", str(tmp_path)])
        assert result.exit_code == 3, result.output
        assert result.output.strip() == "stopped"


@pytest.mark.postgres
def test_postgres_start_status_stop() -> None:
    home = Path(tempfile.mkdtemp(prefix="squall-test-cli-"))  # not tmp_path: see test_deploy.py
    try:
        started = runner.invoke(app, ["postgres", "start", "--home", str(home)])
        assert started.exit_code == 0, started.output
        url = started.output.strip()
        assert url.startswith("postgresql://")
        assert runner.invoke(app, ["postgres", "start", "--home", str(home)]).output.strip() == url
        status = runner.invoke(app, ["postgres", "status", "--home", str(home)])
        assert (status.exit_code, status.output.strip()) == (0, f"running {url}")
        assert runner.invoke(app, ["postgres", "stop", "--home", str(home)]).exit_code == 0
        assert runner.invoke(app, ["postgres", "status", "--home", str(home)]).exit_code == 3
    finally:
        runner.invoke(app, ["postgres", "stop", "--home", str(home)])
        shutil.rmtree(home, ignore_errors=True)
