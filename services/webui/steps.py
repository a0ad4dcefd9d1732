"""Step timings of an attempt, read from the worker status the read model stores (jobs/attempts.status).

Two shapes are accepted, so the page works whichever the projection stores:
  squall's:  {"steps": [{name, state, started_at, ended_at, exit_code, out_of_memory, error}]}
             (the MJC's StepTiming records)
  Hail's:    {"container_statuses": {step: {state, timing: {phase: {start_time, finish_time}},
             container_status: {exit_code, out_of_memory}, short_error, error}}}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.webui.blobs import STEPS


@dataclass(frozen=True)
class Phase:
    name: str               # pulling, running, uploading_log, ...
    started_at: int | None
    ended_at: int | None


@dataclass(frozen=True)
class StepRow:
    name: str
    state: str
    started_at: int | None = None
    ended_at: int | None = None
    exit_code: int | None = None
    out_of_memory: bool = False
    error: str | None = None
    phases: tuple[Phase, ...] = field(default=())


def steps_from_status(status: dict[str, Any] | None) -> list[StepRow]:
    """The attempt's steps in run order (input, main, output, then any others); [] without a status."""
    if not status:
        return []
    if isinstance(status.get("steps"), list):
        rows = [_from_step_timing(s) for s in status["steps"] if isinstance(s, dict)]
    elif isinstance(status.get("container_statuses"), dict):
        rows = [_from_hail(name, s) for name, s in status["container_statuses"].items() if isinstance(s, dict)]
    else:
        return []
    order = {name: i for i, name in enumerate(STEPS)}
    return sorted(rows, key=lambda r: (order.get(r.name, len(order)), r.name))


def _from_step_timing(step: dict[str, Any]) -> StepRow:
    return StepRow(name=str(step.get("name", "?")), state=str(step.get("state", "")),
                   started_at=step.get("started_at"), ended_at=step.get("ended_at"),
                   exit_code=step.get("exit_code"), out_of_memory=bool(step.get("out_of_memory")),
                   error=step.get("error"))


def _from_hail(name: str, status: dict[str, Any]) -> StepRow:
    timing = status.get("timing") or {}
    phases = tuple(Phase(name=phase, started_at=t.get("start_time"), ended_at=t.get("finish_time"))
                   for phase, t in timing.items() if isinstance(t, dict))
    starts = [p.started_at for p in phases if p.started_at is not None]
    ends = [p.ended_at for p in phases if p.ended_at is not None]
    container = status.get("container_status") or {}
    return StepRow(name=name, state=str(status.get("state", "")),
                   started_at=min(starts) if starts else None, ended_at=max(ends) if ends else None,
                   exit_code=container.get("exit_code"), out_of_memory=bool(container.get("out_of_memory")),
                   error=status.get("short_error") or status.get("error"), phases=phases)
