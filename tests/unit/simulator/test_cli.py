"""`squall simulate WORKLOAD`: text and JSON reports, deterministic for a seed, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import services.cli.simulate  # noqa: F401  (registers the command on the app)
from services.cli import app

SMALL = Path(__file__).parents[3] / "deploy" / "workloads" / "small.yaml"


def test_json_reports_of_two_runs_match_except_wall_clock_timing():
    runner = CliRunner()
    first = runner.invoke(app, ["simulate", str(SMALL), "--seed", "5", "--json"])
    second = runner.invoke(app, ["simulate", str(SMALL), "--seed", "5", "--json"])
    assert first.exit_code == 0, first.output
    one, two = json.loads(first.output), json.loads(second.output)
    assert one["results"] == two["results"] and one["digest"] == two["digest"]
    assert one["results"]["seed"] == 5
    assert one["timing"]["decisions_per_s"] > 0


def test_text_report_names_the_measurements():
    result = CliRunner().invoke(app, ["simulate", str(SMALL)])
    assert result.exit_code == 0, result.output
    for label in ("decisions/s", "utilisation", "queue wait", "p95", "fair share", "digest"):
        assert label in result.output


def test_a_bad_workload_exits_2_with_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pools: [{name: standard}]\nusers: [{name: u, batches: [{jobs: 1, runtime: {dist: nope}}]}]\n"
    )
    result = CliRunner().invoke(app, ["simulate", str(bad)])
    assert result.exit_code == 2
    assert "users[0].batches[0].runtime.dist" in result.output
