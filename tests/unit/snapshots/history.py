"""Random histories of several batches on one partition of the batch topic, for the snapshot property
tests: each batch is a lifecycle_runs.Run (re-deliveries, stale reports, deposed schedulers, cancel
races, Creating jobs, late verdicts) driven to quiescence, sometimes followed by a second update (Hail
allows updating a completed batch); the batches interleave, and copies of earlier events are sprinkled
through the log and at its end (late duplicates of completed batches)."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

from lifecycle_runs import ACTIONS, Run  # noqa: E402
from lifecycle_world import Builder  # noqa: E402

from events.catalog import Event  # noqa: E402
from events.codec import Codec  # noqa: E402
from events.envelope import event_key  # noqa: E402
from events.log import Record  # noqa: E402

CODEC = Codec()
TOPIC = "t.batch-events"


class BatchBuilder(Builder):
    """Event ids unique across batches, as every real producer's are."""

    def _env(self, kind: str) -> dict[str, object]:
        env = super()._env(kind)
        env["event_id"] = f"{self.batch_id}:{env['event_id']}"
        return env


def batch_run(data: st.DataObject, batch_id: int) -> list[Event]:
    run = Run(data, builder=BatchBuilder(batch_id=batch_id))
    run.setup()
    for action in data.draw(st.lists(st.sampled_from(ACTIONS), min_size=5, max_size=40)):
        run.step(action)
    if data.draw(st.booleans()):
        run.drive_to_quiescence()
        if data.draw(st.booleans()):  # a new update to the completed batch
            run.add_update(2)
            run.drive_to_quiescence()
    return run.w.log


def history(data: st.DataObject, max_batches: int = 3) -> tuple[list[Event], int]:
    """The interleaved events, and how many late copies end them."""
    logs = [batch_run(data, 100 + i) for i in range(data.draw(st.integers(1, max_batches)))]
    positions = [0] * len(logs)
    merged: list[Event] = []
    while any(p < len(log) for p, log in zip(positions, logs, strict=True)):
        live = [i for i, log in enumerate(logs) if positions[i] < len(log)]
        i = data.draw(st.sampled_from(live))
        merged.append(logs[i][positions[i]])
        positions[i] += 1
    for _ in range(data.draw(st.integers(0, 6))):  # late copies, anywhere after their original
        original = data.draw(st.integers(0, len(merged) - 1))
        merged.insert(data.draw(st.integers(original + 1, len(merged))), merged[original])
    late = [merged[i] for i in data.draw(st.lists(st.integers(0, len(merged) - 1), max_size=4))]
    return merged + late, len(late)


def records(events: list[Event], partition: int = 0) -> list[Record]:
    return [Record(TOPIC, partition, offset, event_key(e), CODEC.encode(e), 0) for offset, e in enumerate(events)]
