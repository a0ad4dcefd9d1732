"""Matching: best fit, never over-commit, constraints, fair-share cut-off, job-private requests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from events.core.autoscale import default_pools
from events.core.explain import Reason
from events.core.matching import InstanceCapacity, ReadyJob, match

GIB = 1024**3
NOW = 1_700_000_000_000


def job(job_id: int, cores: int = 1000, *, user: str = "alice", **fields) -> ReadyJob:
    fields.setdefault("pool", "standard")
    fields.setdefault("memory_bytes", cores * 3 * GIB // 1000)
    return ReadyJob(batch_id=1, job_id=job_id, user=user, cores_mcpu=cores, **fields)


def instance(name: str, free_mcpu: int = 16_000, **fields) -> InstanceCapacity:
    fields.setdefault("pool", "standard")
    fields.setdefault("region", "us-central1")
    fields.setdefault("free_memory_bytes", free_mcpu * 4 * GIB // 1000)
    fields.setdefault("free_storage_gib", 375)
    return InstanceCapacity(name=name, free_mcpu=free_mcpu, **fields)


def placements(result) -> dict[int, str]:
    return {a.job_id: a.instance_name for a in result.assignments}


def reasons(result) -> dict[int, Reason]:
    return {e.job_id: e.reason for e in result.explanations}


def test_best_fit_picks_the_instance_with_the_fewest_free_cores_that_fit():
    instances = [instance("big", 16_000), instance("small", 2_000), instance("tiny", 500)]
    result = match([job(1, 1000), job(2, 1000), job(3, 1000), job(4, 500)], instances, None, NOW)
    assert placements(result) == {1: "small", 2: "small", 3: "big", 4: "tiny"}


def test_memory_and_storage_must_fit_too():
    instances = [instance("low-disk", 4_000, free_storage_gib=5), instance("roomy", 8_000)]
    result = match([job(1, 1000, storage_gib=50)], instances, None, NOW)
    assert placements(result) == {1: "roomy"}
    lean = instance("lean", 4_000, free_memory_bytes=GIB)
    result = match([job(2, 1000, memory_bytes=2 * GIB)], [lean], None, NOW)
    assert reasons(result) == {2: Reason.NO_CAPACITY}
    assert "1 cores, 2.0 GiB memory" in result.explanations[0].message


def test_pool_region_and_preemptible_are_respected():
    instances = [
        instance("hm", pool="highmem"),
        instance("eu", region="europe-west1"),
        instance("spot", pool="standard-np", preemptible=True),
        instance("np", pool="standard-np", preemptible=False),
        instance("asleep", active=False),
    ]
    jobs = [
        job(1, pool="highmem"),
        job(2, regions=("europe-west1",)),
        job(3, pool="standard-np", preemptible=False),
        job(4, regions=("us-east1",)),
    ]
    result = match(jobs, instances, None, NOW)
    assert placements(result) == {1: "hm", 2: "eu", 3: "np"}
    assert reasons(result) == {4: Reason.NO_INSTANCES}


def test_why_says_a_job_whose_regions_no_pool_serves_can_never_run():
    """One that got in anyway (submitted before the pools moved): the front refuses such jobs now
    (events/core/pool_fit.py region_misfit), and `why` must not promise capacity for it."""
    pools = default_pools("us-central1")
    result = match([job(1, regions=("us-east1",)), job(2, regions=("us-central1", "us-east1"))],
                   [], None, NOW, pools=pools)
    assert reasons(result) == {1: Reason.NO_POOL_FITS, 2: Reason.NO_INSTANCES}
    assert "in its regions (us-east1)" in result.explanations[0].message
    assert "is in region us-central1" in result.explanations[0].message


def test_a_job_in_backoff_waits_and_says_until_when():
    result = match([job(1, not_before=NOW + 5_000), job(2, not_before=NOW)], [instance("i")], None, NOW)
    assert placements(result) == {2: "i"}
    assert reasons(result) == {1: Reason.BACKOFF}
    assert "not before 2023-11-14T22:13:25.000Z" in result.explanations[0].message


def test_fair_share_stops_a_user_at_its_share():
    jobs = [job(1, user="alice"), job(2, user="alice"), job(3, user="bob"), job(4, 500, user="alice")]
    shares = {"standard": {"alice": 1_500, "bob": 1_000}}
    result = match(jobs, [instance("i")], shares, NOW)
    # alice's second job exceeds her remaining 500 mCPU: she is stopped for this cycle, like Hail
    assert placements(result) == {1: "i", 3: "i"}
    assert reasons(result) == {2: Reason.OVER_FAIR_SHARE, 4: Reason.OVER_FAIR_SHARE}
    assert "user alice has used its fair share of pool standard" in result.explanations[0].message


def test_a_share_smaller_than_one_job_still_starts_one_job():
    # one free core split three ways: without the allowance nobody would start anything
    jobs = [job(1, user="a"), job(2, user="b"), job(3, user="c"), job(4, user="a")]
    shares = {"standard": {"a": 334, "b": 333, "c": 333}}
    result = match(jobs, [instance("i", 1_000)], shares, NOW)
    assert placements(result) == {1: "i"}
    # a's next job is over its share, but nothing is left for anyone: it waits for capacity, as b's and c's do
    assert reasons(result) == {2: Reason.NO_CAPACITY, 3: Reason.NO_CAPACITY, 4: Reason.NO_CAPACITY}


def test_pools_without_shares_are_not_limited_and_users_without_share_get_none():
    shares = {"standard": {"alice": 1_000}}
    result = match(
        [job(1, user="bob"), job(2, pool="highmem")],
        [instance("i"), instance("h", pool="highmem")],
        shares,
        NOW,
    )
    assert placements(result) == {2: "h"}
    assert reasons(result) == {1: Reason.OVER_FAIR_SHARE}


def test_machine_type_jobs_request_instances_up_to_the_limit():
    jobs = [job(i, machine_type="n1-highmem-8") for i in range(1, 4)]
    result = match(jobs, [instance("i")], None, NOW, job_private_limit=2)
    assert [(r.job_id, r.machine_type) for r in result.job_private_requests] == [
        (1, "n1-highmem-8"),
        (2, "n1-highmem-8"),
    ]
    assert reasons(result) == {3: Reason.JOB_PRIVATE_LIMIT}
    assert placements(result) == {}


def test_full_pools_are_explained_as_at_maximum():
    result = match([job(1, 2000), job(2, 2000)], [instance("i", 2_000)], None, NOW, full_pools={"standard"})
    assert placements(result) == {1: "i"}
    assert reasons(result) == {2: Reason.POOL_AT_MAX}


def test_a_full_pool_names_the_limit_that_holds_it_not_fair_share():
    # nothing free: every share is 0, yet the reason is capacity (and which limit stops growth)
    full = [instance("i", 0)]
    result = match([job(1), job(2, user="bob")], full, {"standard": {"alice": 0, "bob": 0}}, NOW,
                   full_pools={"standard": ("max_live_instances", 4)})
    assert reasons(result) == {1: Reason.POOL_AT_MAX, 2: Reason.POOL_AT_MAX}
    message = result.explanations[0].message
    assert "maximum number of instances (max_live_instances = 4)" in message
    growing = match([job(1)], full, {"standard": {"alice": 0}}, NOW)
    assert reasons(growing) == {1: Reason.NO_CAPACITY}


def test_same_input_gives_the_same_placements():
    instances = [instance(f"i{n}", 1_000 * (n % 5)) for n in range(20)]
    jobs = [job(n, 250 * (1 + n % 4), user=f"u{n % 3}") for n in range(60)]
    assert match(jobs, instances, None, NOW) == match(list(jobs), list(instances), None, NOW)


jobs_strategy = st.lists(
    st.builds(
        ReadyJob,
        batch_id=st.just(1),
        job_id=st.integers(0, 10**6),
        user=st.sampled_from(["a", "b", "c"]),
        pool=st.sampled_from(["standard", "highmem"]),
        cores_mcpu=st.sampled_from([250, 500, 1000, 2000, 4000, 8000, 16000]),
        memory_bytes=st.integers(0, 64 * GIB),
        storage_gib=st.sampled_from([0, 0, 10, 100]),
        preemptible=st.booleans(),
        regions=st.sampled_from([None, ("r1",), ("r2",), ("r1", "r2")]),
        not_before=st.sampled_from([None, NOW - 1, NOW + 1]),
    ),
    max_size=80,
    unique_by=lambda j: j.job_id,
)
instances_strategy = st.lists(
    st.builds(
        InstanceCapacity,
        name=st.text("abcdef", min_size=1, max_size=6),
        pool=st.sampled_from(["standard", "highmem"]),
        region=st.sampled_from(["r1", "r2"]),
        free_mcpu=st.integers(0, 16_000),
        free_memory_bytes=st.integers(0, 64 * GIB),
        free_storage_gib=st.integers(0, 375),
        preemptible=st.booleans(),
        active=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda i: i.name,
)


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, instances_strategy, st.integers(0, 40_000))
def test_never_over_commits_and_every_placement_satisfies_the_job(jobs, instances, share):
    shares = {"standard": {"a": share, "b": share // 2}}
    result = match(jobs, instances, shares, NOW)
    by_name = {i.name: i for i in instances}
    by_id = {j.job_id: j for j in jobs}
    used: dict[str, list[int]] = {}
    for a in result.assignments:
        j, i = by_id[a.job_id], by_name[a.instance_name]
        assert i.active and i.pool == j.pool
        assert j.regions is None or i.region in j.regions
        assert j.preemptible or not i.preemptible
        assert j.not_before is None or j.not_before <= NOW
        assert j.machine_type is None
        totals = used.setdefault(i.name, [0, 0, 0])
        totals[0] += j.cores_mcpu
        totals[1] += j.memory_bytes
        totals[2] += j.storage_gib
    for name, (mcpu, memory, storage) in used.items():
        i = by_name[name]
        assert mcpu <= i.free_mcpu and memory <= i.free_memory_bytes and storage <= i.free_storage_gib
    for user in ("a", "b", "c"):
        limit = shares["standard"].get(user, 0)
        placed = [
            a.cores_mcpu for a in result.assignments if a.user == user and by_id[a.job_id].pool == "standard"
        ]
        # within the share; a positive share smaller than a job may start exactly that one job
        assert sum(placed) <= limit or (limit > 0 and len(placed) == 1)
    accounted = [a.job_id for a in result.assignments] + [e.job_id for e in result.explanations]
    accounted += [r.job_id for r in result.job_private_requests]
    assert sorted(accounted) == sorted(by_id)
