"""Which zone a new instance goes to (pure): zones weighted by their recent success, as Hail does.

Hail's GCP driver (`ZoneMonitor.choose_location`) draws a zone at random with weight
min(quota weight, 10) × success rate, where a zone's success rate is (successes + 1) / (attempts + 2)
over its last 10 instance creations (`WindowFractionCounter(10)`, a (1, 1) prior): a zone that keeps
failing (no capacity, a stock-out) is tried less and less, never never, and recovers as soon as it
succeeds again.

Here the outcomes come from the log (InstanceCreated = the provider accepted it; a deactivation
with reason `create_failed` = it refused), each keyed by instance name so a re-delivered event
counts once, and the draw is a hash of a seed the caller passes in (the new instance's name): the
same log and the same name always give the same zone, so replaying the log explains every choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b

ZONE_WINDOW = 10  # Hail's WindowFractionCounter(10)
MAX_CAPACITY_WEIGHT = 10.0  # Hail caps the quota weight at 10


@dataclass(frozen=True, slots=True)
class ZoneOutcome:
    zone: str
    key: str  # the instance name: one outcome per instance
    success: bool


@dataclass(frozen=True, slots=True)
class ZoneWeight:
    zone: str
    successes: int
    attempts: int
    capacity_weight: float

    @property
    def success_rate(self) -> float:
        return (self.successes + 1) / (self.attempts + 2)

    @property
    def weight(self) -> float:
        return min(self.capacity_weight, MAX_CAPACITY_WEIGHT) * self.success_rate


class ZoneWindow:
    """The last ZONE_WINDOW outcomes of each zone, in log order; a key seen in the window is ignored."""

    def __init__(self, window: int = ZONE_WINDOW) -> None:
        self._window = window
        self._recent: dict[str, list[ZoneOutcome]] = {}

    def push(self, outcome: ZoneOutcome) -> None:
        recent = self._recent.setdefault(outcome.zone, [])
        if any(o.key == outcome.key for o in recent):
            return
        recent.append(outcome)
        del recent[:-self._window]

    def extend(self, outcomes: Iterable[ZoneOutcome]) -> ZoneWindow:
        for outcome in outcomes:
            self.push(outcome)
        return self

    def weights(self, zones: Sequence[str], capacity: Mapping[str, float] | None = None) -> tuple[ZoneWeight, ...]:
        out = []
        for zone in zones:
            recent = self._recent.get(zone, [])
            out.append(ZoneWeight(zone, sum(1 for o in recent if o.success), len(recent),
                                  (capacity or {}).get(zone, 1.0)))
        return tuple(out)


def zone_weights(zones: Sequence[str], outcomes: Iterable[ZoneOutcome],
                 capacity: Mapping[str, float] | None = None, window: int = ZONE_WINDOW) -> tuple[ZoneWeight, ...]:
    """Each zone's weight from the outcomes (in log order) of its last `window` creations."""
    return ZoneWindow(window).extend(outcomes).weights(zones, capacity)


def unit_interval(seed: str) -> float:
    """A number in [0, 1) that depends only on the seed."""
    return int.from_bytes(blake2b(seed.encode(), digest_size=8).digest(), "big") / 2**64


def choose_zone(weights: Sequence[ZoneWeight], seed: str) -> str:
    """The zone drawn with probability proportional to its weight, by a draw derived from the seed."""
    if not weights:
        raise ValueError("no zone to choose from")
    total = sum(w.weight for w in weights)
    if total <= 0:  # every capacity weight is zero: no information, draw uniformly
        return weights[int(unit_interval(seed) * len(weights))].zone
    point = unit_interval(seed) * total
    for w in weights:
        point -= w.weight
        if point < 0:
            return w.zone
    return weights[-1].zone  # rounding: the point fell on the very end
