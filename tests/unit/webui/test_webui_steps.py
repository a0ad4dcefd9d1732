"""Step timings come out of either status shape, in run order."""

from __future__ import annotations

from services.webui.steps import Phase, StepRow, steps_from_status


def test_squall_step_timings() -> None:
    status = {"steps": [
        {"name": "output", "state": "succeeded", "started_at": 30, "ended_at": 40},
        {"name": "main", "state": "failed", "started_at": 10, "ended_at": 30, "exit_code": 137,
         "out_of_memory": True, "error": "out of memory"},
    ]}
    assert steps_from_status(status) == [
        StepRow(name="main", state="failed", started_at=10, ended_at=30, exit_code=137, out_of_memory=True,
                error="out of memory"),
        StepRow(name="output", state="succeeded", started_at=30, ended_at=40),
    ]


def test_hail_container_statuses() -> None:
    status = {"container_statuses": {"main": {
        "state": "succeeded",
        "timing": {"pulling": {"start_time": 5, "finish_time": 9}, "running": {"start_time": 9, "finish_time": 20}},
        "container_status": {"exit_code": 0, "out_of_memory": False},
    }}}
    (row,) = steps_from_status(status)
    assert row.started_at == 5 and row.ended_at == 20 and row.exit_code == 0
    assert row.phases == (Phase("pulling", 5, 9), Phase("running", 9, 20))


def test_no_status_no_steps() -> None:
    assert steps_from_status(None) == []
    assert steps_from_status({}) == []
    assert steps_from_status({"something": "else"}) == []
