"""Ready jobs of one (user, pool), in Hail's order: oldest batch first, then job id."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedSet

from projections.scheduling.model import Demand, JobKey


class ReadyQueue:
    """An ordered set of job keys with the sum of their cores (a fair-share input) and how many jobs
    ask for each demand (a few shapes per queue), so the autoscaler can leave out the demand of jobs
    no worker of the pool can hold without walking the queue."""

    __slots__ = ("_keys", "cores_mcpu", "shapes")

    def __init__(self) -> None:
        self._keys: SortedSet = SortedSet()
        self.cores_mcpu = 0
        self.shapes: dict[Demand, int] = {}

    def add(self, key: JobKey, demand: Demand) -> None:
        if key not in self._keys:
            self._keys.add(key)
            self.cores_mcpu += demand.cores_mcpu
            self.shapes[demand] = self.shapes.get(demand, 0) + 1

    def discard(self, key: JobKey, demand: Demand) -> bool:
        if key in self._keys:
            self._keys.remove(key)
            self.cores_mcpu -= demand.cores_mcpu
            left = self.shapes[demand] - 1
            if left:
                self.shapes[demand] = left
            else:
                del self.shapes[demand]
            return True
        return False

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[JobKey]:
        return iter(self._keys)
