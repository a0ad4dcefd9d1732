"""decide(state, command): the front end's commands against Hail's validation rules (batch/batch/front_end/validate.py, front_end.py)."""

from __future__ import annotations

import itertools

import pytest
from lifecycle_world import SPEC, World

from events.catalog import (
    BatchCancelRequested,
    BatchDeleted,
    BatchUpdateCommitted,
    BatchUpdateCreated,
    JobCreated,
    JobGroupCancelRequested,
    JobGroupCreated,
)
from events.core.lifecycle import (
    AddJobGroups,
    AddJobs,
    BatchAlreadyExists,
    BatchIsCancelled,
    BatchNotFound,
    CancelBatch,
    CancelJobGroup,
    CommitUpdate,
    CreateBatch,
    CreateUpdate,
    DeleteBatch,
    InvalidJob,
    InvalidJobGroup,
    JobDraft,
    JobGroupDraft,
    JobGroupNotFound,
    NotFound,
    Rejected,
    UpdateAlreadyCommitted,
    UpdateNotFound,
    WrongNumberOfJobs,
    decide,
)

_ids = itertools.count(1)


def meta() -> dict[str, object]:
    n = next(_ids)
    return {"command_id": f"cmd-{n}", "occurred_at": 1_700_000_000_000 + n, "producer": "front/1", "batch_id": 7}


class Front:
    """Runs commands like the front end: decide, then append and fold the events."""

    def __init__(self) -> None:
        self.world = World()

    def do(self, command_type: type, **fields: object) -> list:
        events = decide(self.world.state, command_type(**meta(), **fields))
        self.world.append(*events)
        return events

    @property
    def state(self):
        return self.world.state


def job(job_id: int, **kw: object) -> JobDraft:
    return JobDraft(job_id=job_id, spec=SPEC, spec_json="{}", **kw)


def batch_with_update(n_jobs: int, n_job_groups: int = 0) -> Front:
    f = Front()
    f.do(CreateBatch, user="alice", billing_project="bp", token="t1")
    f.do(CreateUpdate, token="u1", n_jobs=n_jobs, n_job_groups=n_job_groups)
    return f


def test_create_batch_is_idempotent_by_token():
    f = Front()
    assert len(f.do(CreateBatch, user="alice", billing_project="bp", token="t1")) == 1
    assert f.do(CreateBatch, user="alice", billing_project="bp", token="t1") == []
    with pytest.raises(BatchAlreadyExists):
        f.do(CreateBatch, user="alice", billing_project="bp", token="other")


def test_commands_on_a_missing_batch_are_not_found():
    with pytest.raises(BatchNotFound, match="batch 7 not found"):
        decide(None, CreateUpdate(**meta(), token="u", n_jobs=1))


def test_updates_reserve_contiguous_id_blocks():
    f = batch_with_update(3, n_job_groups=2)
    [second] = f.do(CreateUpdate, token="u2", n_jobs=2, n_job_groups=1)
    first = f.state.updates[1]
    assert (first.start_job_id, first.start_job_group_id) == (1, 1)
    assert isinstance(second, BatchUpdateCreated)
    assert (second.update_id, second.start_job_id, second.start_job_group_id) == (2, 4, 3)
    assert f.do(CreateUpdate, token="u2", n_jobs=2) == [], "a retried update create adds nothing"
    assert f.state.update_by_token("u2").update_id == 2


def test_jobs_map_update_relative_ids_and_parents_to_absolute_ones():
    f = batch_with_update(2)
    f.do(AddJobs, update_id=1, jobs=(job(1), job(2, in_update_parent_ids=(1,))))
    f.do(CommitUpdate, update_id=1)
    f.do(CreateUpdate, token="u2", n_jobs=2)
    created = f.do(AddJobs, update_id=2, jobs=(job(1, absolute_parent_ids=(2,)),
                                               job(2, in_update_parent_ids=(1,), absolute_parent_ids=(1,))))
    assert [(e.job_id, e.parent_ids, e.update_id) for e in created] == [(3, (2,), 2), (4, (1, 3), 2)]
    assert all(isinstance(e, JobCreated) and e.user == "alice" for e in created)


def test_bunches_may_arrive_in_any_order_and_a_resent_bunch_adds_nothing():
    f = batch_with_update(3)
    f.do(AddJobs, update_id=1, jobs=(job(3, in_update_parent_ids=(1, 2)),))  # children before parents
    f.do(AddJobs, update_id=1, jobs=(job(1), job(2)))
    assert f.do(AddJobs, update_id=1, jobs=(job(1), job(2))) == []
    [commit] = f.do(CommitUpdate, update_id=1)
    assert isinstance(commit, BatchUpdateCommitted) and commit.n_jobs == 3
    assert f.state.jobs[3].n_pending_parents == 2


@pytest.mark.parametrize(("draft", "message"), [
    (job(0), "job_id must be between 1 and 2"),
    (job(3), "job_id must be between 1 and 2"),
    (job(2, in_update_parent_ids=(2,)), "not an earlier job of this update"),
    (job(1, absolute_parent_ids=(1,)), "not a job of an earlier update"),
    (job(1, in_update_job_group_id=1), "in_update_job_group_id must be between 1 and 0"),
    (job(1, absolute_job_group_id=5), "job group 5 does not exist"),
    (job(1, n_max_attempts=0), "n_max_attempts must be >= 1"),
])
def test_invalid_jobs_are_rejected_with_a_message_naming_the_problem(draft, message):
    f = batch_with_update(2)
    with pytest.raises(InvalidJob, match=message):
        f.do(AddJobs, update_id=1, jobs=(draft,))


def test_absolute_parents_must_exist():
    f = batch_with_update(1)
    f.do(CreateUpdate, token="u2", n_jobs=1)  # update 1's job 1 was reserved but never sent
    with pytest.raises(InvalidJob, match="parent job 1 does not exist"):
        f.do(AddJobs, update_id=2, jobs=(job(1, absolute_parent_ids=(1,)),))


def test_commit_checks_the_job_count_with_hails_message():
    f = batch_with_update(3)
    f.do(AddJobs, update_id=1, jobs=(job(1), job(2)))
    with pytest.raises(WrongNumberOfJobs, match="^wrong number of jobs: expected 3, actual 2$"):
        f.do(CommitUpdate, update_id=1)
    f.do(AddJobs, update_id=1, jobs=(job(3),))
    assert len(f.do(CommitUpdate, update_id=1)) == 1
    assert f.do(CommitUpdate, update_id=1) == [], "committing twice is fine (Hail returns rc 0)"
    with pytest.raises(UpdateAlreadyCommitted):
        f.do(AddJobs, update_id=1, jobs=(job(1),))
    with pytest.raises(UpdateNotFound):
        f.do(CommitUpdate, update_id=9)


def test_a_cancelled_batch_refuses_updates_and_commits():
    f = batch_with_update(1)
    f.do(AddJobs, update_id=1, jobs=(job(1),))
    [cancel] = f.do(CancelBatch, user="alice")
    assert isinstance(cancel, BatchCancelRequested)
    assert f.do(CancelBatch, user="alice") == []
    with pytest.raises(BatchIsCancelled, match="batch 7 is cancelled: cannot commit an update"):
        f.do(CommitUpdate, update_id=1)
    with pytest.raises(BatchIsCancelled, match="cannot create an update"):
        f.do(CreateUpdate, token="u2", n_jobs=1)


def test_job_groups_nest_at_most_two_deep():
    f = batch_with_update(0, n_job_groups=3)
    created = f.do(AddJobGroups, update_id=1, job_groups=(
        JobGroupDraft(job_group_id=1), JobGroupDraft(job_group_id=2, in_update_parent_id=1)))
    assert [(e.job_group_id, e.parent_job_group_id) for e in created] == [(1, 0), (2, 1)]
    assert all(isinstance(e, JobGroupCreated) for e in created)
    with pytest.raises(InvalidJobGroup, match="at most 2 deep"):
        f.do(AddJobGroups, update_id=1, job_groups=(JobGroupDraft(job_group_id=3, in_update_parent_id=2),))


@pytest.mark.parametrize(("draft", "message"), [
    (JobGroupDraft(job_group_id=2), "between 1 and 1"),
    (JobGroupDraft(job_group_id=1, in_update_parent_id=1), "earlier job group of this update"),
    (JobGroupDraft(job_group_id=1, absolute_parent_id=1), "not a job group of an earlier update"),
    (JobGroupDraft(job_group_id=1, absolute_parent_id=0, in_update_parent_id=1), "not both"),
])
def test_invalid_job_groups_are_rejected(draft, message):
    f = batch_with_update(0, n_job_groups=1)
    with pytest.raises(InvalidJobGroup, match=message):
        f.do(AddJobGroups, update_id=1, job_groups=(draft,))


def test_a_group_cannot_be_added_under_a_cancelled_group():
    f = batch_with_update(0, n_job_groups=1)
    f.do(AddJobGroups, update_id=1, job_groups=(JobGroupDraft(job_group_id=1),))
    f.do(CommitUpdate, update_id=1)
    [request] = f.do(CancelJobGroup, user="alice", job_group_id=1)
    assert isinstance(request, JobGroupCancelRequested)
    f.world.settle()  # the resolver turns the request into JobGroupCancelled
    f.do(CreateUpdate, token="u2", n_jobs=0, n_job_groups=1)
    with pytest.raises(InvalidJobGroup, match="under cancelled job group 1"):
        f.do(AddJobGroups, update_id=2, job_groups=(JobGroupDraft(job_group_id=1, absolute_parent_id=1),))


def test_cancel_of_an_unknown_group_is_not_found_and_delete_is_recorded_once():
    f = batch_with_update(0)
    with pytest.raises(JobGroupNotFound):
        f.do(CancelJobGroup, user="alice", job_group_id=4)
    [deleted] = f.do(DeleteBatch, user="alice")
    assert isinstance(deleted, BatchDeleted) and f.state.deleted and f.state.cancel_requested
    assert f.do(DeleteBatch, user="alice") == []


def test_errors_split_into_not_found_and_rejected():
    assert issubclass(BatchNotFound, NotFound) and issubclass(JobGroupNotFound, NotFound)
    assert issubclass(WrongNumberOfJobs, Rejected) and issubclass(BatchIsCancelled, Rejected)


def test_a_whole_create_fast_flow_runs_to_ready():
    f = batch_with_update(2, n_job_groups=1)
    f.do(AddJobGroups, update_id=1, job_groups=(JobGroupDraft(job_group_id=1),))
    f.do(AddJobs, update_id=1, jobs=(job(1, in_update_job_group_id=1), job(2, in_update_parent_ids=(1,))))
    f.do(CommitUpdate, update_id=1)
    f.world.settle()
    assert [j.state for j in f.state.jobs.values()] == ["Ready", "Pending"]
    assert f.state.groups[1].n_jobs == 1 and f.state.n_jobs == 2
