"""`squall submit FILE --estimate`: what a batch would cost, before it runs.

The front end prices each job's requested resources for the time it is expected to run
(POST /api/v1alpha/batches/estimate, services/front/estimate.py): `--duration` for every job, or a
job's own `expected_duration` in the description (ignored by a real submit)::

    jobs:
      - name: align
        image: busybox
        command: [sh, -c, "..."]
        cpu: "4"
        expected_duration: 2h       # 90s, 10m, 1.5h, 2d, or a number of seconds
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.table import Table

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class DurationError(ValueError):
    """A duration that is not a number of seconds or NUMBER followed by s, m, h or d."""


def parse_duration_s(value: Any, what: str = "--duration") -> float:
    if isinstance(value, bool):
        raise DurationError(f"{what}: {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise DurationError(f"{what}: {value!r} is not a duration; use e.g. 90s, 10m, 1.5h, 2d or seconds")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < 0:
        raise DurationError(f"{what}: a duration cannot be negative")
    return seconds


def job_durations(description: dict[str, Any]) -> dict[int, float]:
    """Job index (1-based, as the batch builder numbers them) -> its own `expected_duration`."""
    out: dict[int, float] = {}
    for i, job in enumerate(description.get("jobs") or []):
        if isinstance(job, dict) and job.get("expected_duration") is not None:
            out[i + 1] = parse_duration_s(job["expected_duration"], f"jobs[{i}].expected_duration")
    return out


def print_estimate(console: Console, answer: dict[str, Any]) -> None:
    total = answer["cost"]
    console.print(f"estimated cost [bold]${total:.4f}[/bold] for {answer['n_jobs']} jobs "
                  f"({answer['msec_mcpu'] / 3.6e9:.2f} core-hours), if each runs as long as given")
    table = Table("resource", "cost", "share")
    for entry in answer["cost_breakdown"]:
        share = entry["cost"] / total if total else 0.0
        table.add_row(entry["resource"], f"${entry['cost']:.4f}", f"{100 * share:.0f}%")
    console.print(table)
    project = answer["billing_project"]
    if project["limit"] is None:
        console.print(f"billing project {project['billing_project']}: no limit "
                      f"(accrued ${project['accrued_cost']:.4f})")
    else:
        verdict = "fits within" if project["within_limit"] else "[red]would exceed[/red]"
        console.print(f"billing project {project['billing_project']}: ${project['accrued_cost']:.4f} accrued of "
                      f"${project['limit']:.4f}; this batch {verdict} what is left")
