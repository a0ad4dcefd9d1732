"""Presentation helpers: the derived batch state follows Hail's order; values render compactly."""

from __future__ import annotations

import pytest

from services.webui import present


def batch(**kw: object) -> dict[str, object]:
    row: dict[str, object] = {"n_failed": 0, "n_cancelled": 0, "cancelled": False, "state": "running"}
    row.update(kw)
    return row


@pytest.mark.parametrize(("row", "state"), [
    (batch(), "running"),
    (batch(state="complete"), "success"),
    (batch(state="complete", n_cancelled=1), "cancelled"),
    (batch(cancelled=True), "cancelled"),
    (batch(cancelled=True, n_failed=1), "failure"),  # failure wins over cancelled
    (batch(state="complete", n_failed=2), "failure"),
])
def test_batch_state(row: dict[str, object], state: str) -> None:
    assert present.batch_state(row) == state


@pytest.mark.parametrize(("ms", "text"), [
    (None, ""), (0, "0ms"), (850, "850ms"), (12_345, "12.3s"), (245_000, "4m 05s"),
    (7_380_000, "2h 03m"), (273_600_000, "3d 04h"),
])
def test_duration(ms: int | None, text: str) -> None:
    assert present.duration(ms) == text


def test_timestamps_are_utc() -> None:
    assert present.timestamp(0) == "1970-01-01 00:00:00Z"
    assert present.timestamp_ms(1_500) == "1970-01-01 00:00:01.500Z"
    assert present.timestamp(None) == ""


@pytest.mark.parametrize(("fn", "value", "text"), [
    (present.cost, 0.01234, "$0.0123"), (present.cost, 0.0, "$0.0000"), (present.cost, 0.00001, "<$0.0001"),
    (present.cores, 250, "0.25"), (present.cores, 4000, "4"),
    (present.size, 512, "512 B"), (present.size, 3 << 30, "3.0 GiB"), (present.size, 5 << 40, "5.0 TiB"),
    (present.percent, 0.256, "26%"), (present.percent, None, ""),
])
def test_values(fn, value: object, text: str) -> None:  # noqa: ANN001
    assert fn(value) == text
