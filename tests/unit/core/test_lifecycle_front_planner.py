"""The one write path: the front's parser and planner (services/front/specs.py, update_plan.py) make
the events, the core folds them. Hail's rules (batch/batch/front_end/validate.py, front_end.py) as
the API applies them; the rules that need the store's rows in PostgreSQL (a create retried by
token, a resent bunch, parents whose JobCreated is in the log, an unknown group) are exercised
against PostgreSQL in tests/integration/front/test_front_submit.py and test_front_errors.py."""

from __future__ import annotations

import pytest
from lifecycle_world import PRODUCER, USER, Clock, World
from memory_front import MemoryFront, job_body

from events.catalog import BatchUpdateCommitted, BatchUpdateCreated, JobCreated, JobGroupCancelRequested
from services.front.errors import Conflict, InvalidRequest

BATCH = 7


class Front:
    """The in-memory front, its events appended to a batch's log and folded as they are made."""

    def __init__(self) -> None:
        self.api = MemoryFront(BATCH, USER, PRODUCER, Clock())
        self.world = World()
        self.world.append(*self.api.create_batch({"billing_project": "bp", "token": "t1", "n_jobs": 0}))

    def do(self, events: list) -> list:
        self.world.append(*events)
        return events

    def update(self, n_jobs: int, n_job_groups: int = 0) -> int:
        update_id, events = self.api.create_update({"token": f"u{len(self.api.updates) + 1}", "n_jobs": n_jobs,
                                                    "n_job_groups": n_job_groups})
        self.do(events)
        return update_id

    @property
    def state(self):
        return self.world.state


def test_updates_reserve_contiguous_id_blocks():
    f = Front()
    f.update(3, n_job_groups=2)
    _, [second] = f.api.create_update({"token": "u2", "n_jobs": 2, "n_job_groups": 1})
    f.do([second])
    first = f.state.updates[1]
    assert (first.start_job_id, first.start_job_group_id) == (1, 1)
    assert isinstance(second, BatchUpdateCreated)
    assert (second.update_id, second.start_job_id, second.start_job_group_id) == (2, 4, 3)
    assert f.state.update_by_token("u2").update_id == 2


def test_jobs_map_update_relative_ids_and_parents_to_absolute_ones():
    f = Front()
    f.update(2)
    f.do(f.api.add_jobs(1, [job_body(1), job_body(2, in_update_parents=(1,))]))
    f.do(f.api.commit(1))
    f.update(2)
    created = f.do(f.api.add_jobs(2, [job_body(1, parents=(2,)), job_body(2, in_update_parents=(1,), parents=(1,))]))
    assert [(e.job_id, e.parent_ids, e.update_id) for e in created] == [(3, (2,), 2), (4, (1, 3), 2)]
    assert all(isinstance(e, JobCreated) and e.user == USER for e in created)
    assert f.state.jobs[4].parent_ids == (1, 3)


def test_bunches_may_arrive_in_any_order():
    f = Front()
    f.update(3)
    f.do(f.api.add_jobs(1, [job_body(3, in_update_parents=(1, 2))]))  # children before parents
    f.do(f.api.add_jobs(1, [job_body(1), job_body(2)]))
    [commit] = f.do(f.api.commit(1))
    assert isinstance(commit, BatchUpdateCommitted) and commit.n_jobs == 3
    assert f.state.jobs[3].n_pending_parents == 2


@pytest.mark.parametrize(("body", "field", "message"), [
    (job_body(3), "bunch[0].job_id", "outside this update's n_jobs=2"),
    (job_body(2, in_update_parents=(2,)), "bunch[0].in_update_parent_ids[0]", "earlier job of this update"),
    (job_body(1, parents=(1,)), "bunch[0].absolute_parent_ids[0]", "not a job of an earlier update"),
    (job_body(1, in_update_group=1), "bunch[0].in_update_job_group_id", "outside this update's n_job_groups=0"),
    (job_body(1, group=1), "bunch[0].absolute_job_group_id", "not a group of an earlier update"),
    ({**job_body(1), "n_max_attempts": 0}, "bunch[0].n_max_attempts", "must be at least 1, not 0"),
])
def test_invalid_jobs_are_refused_naming_the_field_and_the_problem(body, field, message):
    f = Front()
    f.update(2)
    with pytest.raises(InvalidRequest, match=message) as refused:
        f.api.add_jobs(1, [body])
    assert refused.value.field == field


def test_commit_checks_the_job_count_with_hails_message():
    f = Front()
    f.update(3)
    f.do(f.api.add_jobs(1, [job_body(1), job_body(2)]))
    with pytest.raises(Conflict, match="^wrong number of jobs: expected 3, actual 2$"):
        f.api.commit(1)
    f.do(f.api.add_jobs(1, [job_body(3)]))
    assert len(f.do(f.api.commit(1))) == 1
    assert f.api.commit(1) == [], "committing twice is fine (Hail returns rc 0)"
    with pytest.raises(Conflict, match="already committed"):
        f.api.add_jobs(1, [job_body(1)])


def test_a_cancelled_batch_refuses_updates_jobs_and_commits():
    f = Front()
    f.update(2)
    f.do(f.api.add_jobs(1, [job_body(1)]))
    f.do(f.api.cancel_batch())
    assert f.state.cancel_requested
    with pytest.raises(Conflict, match="batch 7 is cancelled: its update 1 cannot be committed"):
        f.api.commit(1)
    with pytest.raises(Conflict, match="batch 7 is cancelled: it accepts no new jobs or job groups"):
        f.api.add_jobs(1, [job_body(2)])
    with pytest.raises(Conflict, match="batch 7 is cancelled: it accepts no new updates"):
        f.api.create_update({"token": "u2", "n_jobs": 1})


def test_job_groups_nest_at_most_two_deep():
    f = Front()
    f.update(0, n_job_groups=3)
    created = f.do(f.api.add_groups(1, [{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1}]))
    assert [(e.job_group_id, e.parent_job_group_id) for e in created] == [(1, 0), (2, 1)]
    assert f.state.groups[2].depth == 2
    with pytest.raises(InvalidRequest, match="at most 2 deep"):
        f.api.add_groups(1, [{"job_group_id": 3, "in_update_parent_id": 2}])


@pytest.mark.parametrize(("body", "message"), [
    ({"job_group_id": 2}, "outside this update's n_job_groups=1"),
    ({"job_group_id": 1, "in_update_parent_id": 1}, "earlier group of this update"),
    ({"job_group_id": 1, "absolute_parent_id": 1}, "not a group of an earlier update"),
    ({"job_group_id": 1, "absolute_parent_id": 0, "in_update_parent_id": 1}, "not both"),
])
def test_invalid_job_groups_are_refused(body, message):
    f = Front()
    f.update(0, n_job_groups=1)
    with pytest.raises(InvalidRequest, match=message):
        f.api.add_groups(1, [body])


def test_a_group_cannot_be_added_under_a_cancelled_group():
    f = Front()
    f.update(0, n_job_groups=1)
    f.do(f.api.add_groups(1, [{"job_group_id": 1}]))
    f.do(f.api.commit(1))
    [request] = f.do(f.api.cancel_group(1))
    assert isinstance(request, JobGroupCancelRequested)
    f.world.settle()  # the resolver turns the request into JobGroupCancelled
    assert f.state.is_group_cancelled(1)
    f.update(0, n_job_groups=1)
    with pytest.raises(Conflict, match="parent job group 1 is cancelled"):
        f.api.add_groups(2, [{"job_group_id": 1, "absolute_parent_id": 1}])


def test_a_whole_create_fast_flow_runs_to_ready():
    f = Front()
    f.update(2, n_job_groups=1)
    f.do(f.api.add_groups(1, [{"job_group_id": 1}]))
    f.do(f.api.add_jobs(1, [job_body(1, in_update_group=1), job_body(2, in_update_parents=(1,))]))
    f.do(f.api.commit(1))
    f.world.settle()
    assert [j.state for j in f.state.jobs.values()] == ["Ready", "Pending"]
    assert f.state.groups[1].n_jobs == 1 and f.state.n_jobs == 2
