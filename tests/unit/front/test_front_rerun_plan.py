"""Planning a re-run of a batch's failed jobs: which jobs are copied, and how their parents are wired."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.front.rerun_plan import EndedJob, latest_copy, plan_rerun
from services.front.specs import SpecRules, parse_job


def spec(job_id: int, **extra) -> dict:
    return {"job_id": job_id, "process": {"type": "docker", "image": "busybox", "command": ["false"]},
            "in_update_parent_ids": [], "absolute_parent_ids": [], "absolute_job_group_id": 0, "n_max_attempts": 3,
            "attributes": {"name": f"j{job_id}"}, **extra}


def ended(job_id: int, parents: tuple[int, ...] = (), group: int = 0) -> EndedJob:
    return EndedJob(job_id, parents, group, spec(job_id))


def test_a_failed_job_and_its_cancelled_child_are_copied_with_their_edge():
    # 1 succeeded; 2 (child of 1) failed; 3 (child of 2) was cancelled; 4 (child of 1) succeeded
    plan = plan_rerun([ended(2, (1,)), ended(3, (2,))], {}, set())
    assert [c.old_job_id for c in plan.copies] == [2, 3]
    first, second = (c.spec for c in plan.copies)
    assert (first["job_id"], first["absolute_parent_ids"], first["in_update_parent_ids"]) == (1, [1], [])
    assert (second["job_id"], second["absolute_parent_ids"], second["in_update_parent_ids"]) == (2, [], [1])
    assert first["attributes"] == {"name": "j2"} and first["n_max_attempts"] == 3
    assert plan.skipped == ()


def test_a_parent_re_run_before_is_replaced_by_its_newest_copy():
    # job 2 was copied to 10, 10 to 20; job 7 (child of 2) ended later and was never copied
    plan = plan_rerun([ended(7, (2, 1))], {2: 10, 10: 20}, set())
    assert plan.copies[0].spec["absolute_parent_ids"] == [1, 20]


def test_a_child_that_depends_on_a_later_copy_comes_after_it():
    # 5 is a child of 2; 2 was copied to 10, and both 5 and 10 ended badly: 10 must come first
    plan = plan_rerun([ended(5, (2,)), ended(10, (1,))], {2: 10}, set())
    assert [c.old_job_id for c in plan.copies] == [10, 5]
    assert plan.copies[1].spec["in_update_parent_ids"] == [1]


def test_jobs_of_cancelled_groups_are_skipped_and_their_children_keep_them_as_parents():
    plan = plan_rerun([ended(2, group=1), ended(3, (2,), group=0)], {}, {1})
    assert plan.skipped == (2,)
    assert [c.old_job_id for c in plan.copies] == [3]
    assert plan.copies[0].spec["absolute_parent_ids"] == [2]  # the copy is cancelled, as the original was


def test_a_copy_stays_in_its_group_whatever_its_spec_said():
    job = EndedJob(4, (), 3, spec(2, in_update_job_group_id=1, parent_ids=[1]))
    copied = plan_rerun([job], {}, set()).copies[0].spec
    assert copied["absolute_job_group_id"] == 3 and "in_update_job_group_id" not in copied
    assert "parent_ids" not in copied


def test_copies_are_specs_the_front_accepts():
    plan = plan_rerun([ended(2, (1,)), ended(3, (2,)), ended(4, (2, 3))], {}, set())
    parsed = [parse_job(f"copy {c.old_job_id}", c.spec, SpecRules()) for c in plan.copies]
    assert [(j.job_id, j.in_update_parent_ids, j.absolute_parent_ids) for j in parsed] == [
        (1, (), (1,)), (2, (1,), ()), (3, (1, 2), ())]


def test_a_cycle_of_copies_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        latest_copy(1, {1: 2, 2: 1})


@st.composite
def batches(draw):
    """A DAG of n jobs (parents have smaller ids), the ones that ended badly, earlier copies, cancelled groups."""
    n = draw(st.integers(1, 25))
    parents = {j: tuple(sorted(draw(st.sets(st.integers(1, j - 1), max_size=3)))) if j > 1 else ()
               for j in range(1, n + 1)}
    groups = {j: draw(st.integers(0, 2)) for j in range(1, n + 1)}
    bad = draw(st.sets(st.integers(1, n)))
    copied = {j: n + i for i, j in enumerate(sorted(draw(st.sets(st.integers(1, n)))), start=1)}
    jobs = [EndedJob(j, parents[j], groups[j], spec(j)) for j in sorted(bad) if j not in copied]
    # an earlier copy that ended badly too is a candidate, depending on its original's parents' copies
    for old, new in copied.items():
        if draw(st.booleans()):
            jobs.append(EndedJob(new, tuple(sorted({copied.get(p, p) for p in parents[old]})), groups[old],
                                 spec(new)))
    cancelled = draw(st.sets(st.integers(0, 2), max_size=1))
    return jobs, copied, cancelled


@given(batches())
def test_every_copy_waits_only_for_earlier_copies_and_keeps_every_edge(case):
    jobs, copied, cancelled = case
    plan = plan_rerun(jobs, copied, cancelled)
    by_id = {j.job_id: j for j in jobs}
    assert sorted(c.old_job_id for c in plan.copies) == sorted(j.job_id for j in jobs if j.job_group_id not in cancelled)
    assert list(plan.skipped) == sorted(j.job_id for j in jobs if j.job_group_id in cancelled)
    new_id = {c.old_job_id: c.spec["job_id"] for c in plan.copies}
    assert sorted(new_id.values()) == list(range(1, len(plan.copies) + 1))
    for c in plan.copies:
        assert all(p < c.spec["job_id"] for p in c.spec["in_update_parent_ids"])
        wired = {("copy", p) for p in c.spec["in_update_parent_ids"]} | \
                {("old", p) for p in c.spec["absolute_parent_ids"]}
        expected = set()
        for p in by_id[c.old_job_id].parent_ids:
            newest = latest_copy(p, copied)
            expected.add(("copy", new_id[newest]) if newest in new_id else ("old", newest))
        assert wired == expected
    assert plan == plan_rerun(list(reversed(jobs)), copied, cancelled)  # the input's order does not matter
