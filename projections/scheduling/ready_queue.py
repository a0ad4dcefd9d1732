"""Ready jobs of one (user, pool), in Hail's order: oldest batch first, then job id."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedSet

from projections.scheduling.model import JobKey


class ReadyQueue:
    """An ordered set of job keys with the sum of their cores (a fair-share input)."""

    __slots__ = ("_keys", "cores_mcpu")

    def __init__(self) -> None:
        self._keys: SortedSet = SortedSet()
        self.cores_mcpu = 0

    def add(self, key: JobKey, cores_mcpu: int) -> None:
        if key not in self._keys:
            self._keys.add(key)
            self.cores_mcpu += cores_mcpu

    def discard(self, key: JobKey, cores_mcpu: int) -> bool:
        if key in self._keys:
            self._keys.remove(key)
            self.cores_mcpu -= cores_mcpu
            return True
        return False

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[JobKey]:
        return iter(self._keys)
