"""Pure planning of "re-run the failed jobs of a batch": which jobs to copy, and their new specs.

Input: the batch's jobs that ended Failed, Error or Cancelled and were not re-run before, each with
its absolute parent ids, job group and accepted Hail spec; the copies earlier re-runs made
(old id -> new id); and the job groups that are cancelled (with their descendants).

Output: one job spec per copy, in an order where parents come first, numbered 1..n inside the new
update, so the specs go through the front's ordinary update path (specs.parse_job, plan.plan_jobs):
- a parent that is copied too becomes an in-update parent (the copy waits for the parent's copy);
- any other parent stays an absolute parent: one that succeeded counts as done at once, as Hail
  counts parents of earlier updates; a parent re-run before is replaced by its latest copy;
- a job whose job group is cancelled is not copied (its copy would be cancelled on arrival).
No I/O, no clock: the same input always plans the same update.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

RERUN_STATES: Final = ("Failed", "Error", "Cancelled")
# The spec keys that place a job in its update; a copy gets its own.
_PLACEMENT_KEYS: Final = frozenset(("job_id", "parent_ids", "in_update_parent_ids", "absolute_parent_ids",
                                    "in_update_job_group_id", "absolute_job_group_id"))


@dataclass(frozen=True, slots=True)
class EndedJob:
    job_id: int
    parent_ids: tuple[int, ...]   # absolute
    job_group_id: int             # absolute
    spec: Mapping[str, Any]       # the Hail job spec as the front accepted it


@dataclass(frozen=True, slots=True)
class Copy:
    old_job_id: int
    spec: dict[str, Any]          # `job_id` is the copy's id inside the new update (1..n)


@dataclass(frozen=True, slots=True)
class RerunPlan:
    copies: tuple[Copy, ...]
    skipped: tuple[int, ...]      # ended jobs not copied: their job group is cancelled


def latest_copy(job_id: int, copies_so_far: Mapping[int, int]) -> int:
    """The newest incarnation of a job: itself, or the copy of its copy of ... ."""
    seen = 0
    while job_id in copies_so_far:
        job_id = copies_so_far[job_id]
        seen += 1
        if seen > len(copies_so_far):
            raise ValueError(f"the re-run copies form a cycle through job {job_id}")
    return job_id


def plan_rerun(ended: Sequence[EndedJob], copies_so_far: Mapping[int, int],
               cancelled_groups: Collection[int]) -> RerunPlan:
    skipped = tuple(sorted(j.job_id for j in ended if j.job_group_id in cancelled_groups))
    chosen = {j.job_id: j for j in ended if j.job_group_id not in cancelled_groups}
    resolved = {job_id: tuple(sorted({latest_copy(p, copies_so_far) for p in job.parent_ids}))
                for job_id, job in chosen.items()}
    order = _parents_first(resolved)
    position = {old: i for i, old in enumerate(order, start=1)}
    copies = []
    for old in order:
        parents = resolved[old]
        spec = {k: v for k, v in chosen[old].spec.items() if k not in _PLACEMENT_KEYS}
        spec.update(job_id=position[old],
                    in_update_parent_ids=[position[p] for p in parents if p in position],
                    absolute_parent_ids=[p for p in parents if p not in position],
                    absolute_job_group_id=chosen[old].job_group_id)
        copies.append(Copy(old, spec))
    return RerunPlan(tuple(copies), skipped)


def _parents_first(parents_of: Mapping[int, tuple[int, ...]]) -> list[int]:
    """A topological order of the chosen jobs by their chosen parents, smallest id first among ready ones.

    Ids alone are not enough: a job can depend on the copy (a larger id) of a parent re-run before.
    """
    waiting = {job: sum(1 for p in parents if p in parents_of) for job, parents in parents_of.items()}
    children: dict[int, list[int]] = {}
    for job, parents in parents_of.items():
        for p in parents:
            if p in parents_of:
                children.setdefault(p, []).append(job)
    ready = [job for job, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        job = heapq.heappop(ready)
        order.append(job)
        for child in children.get(job, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    if len(order) != len(parents_of):
        raise ValueError("the jobs to re-run depend on each other in a cycle")
    return order
