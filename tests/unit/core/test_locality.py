"""Data locality's rule (events/core/locality.py) and the pools' region rule (events/core/pool_fit.py
`region_misfit`), issue #18 item 4."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from events.core.autoscale import default_pools
from events.core.locality import (
    DUAL_REGIONS,
    MULTI_REGIONS,
    locality_problem,
    location_serves,
    remote_buckets,
)
from events.core.pool_fit import region_misfit

CONTINENTS = {"us": ["us-central1", "us-east1", "us-east4", "us-west1", "us-west2"],
              "europe": ["europe-west1", "europe-west4", "europe-north1"],
              "asia": ["asia-east1", "asia-northeast1", "asia-northeast2", "asia-southeast1"]}
REGIONS = [r for rs in CONTINENTS.values() for r in rs]
LOCATIONS = [r.upper() for r in REGIONS] + ["US", "EU", "ASIA", "NAM4", "EUR4", "ASIA1"]

regions = st.sampled_from(REGIONS)
locations = st.sampled_from(LOCATIONS)
cases = st.sampled_from([str.upper, str.lower, str.title])


def test_a_region_location_serves_that_region_only() -> None:
    assert location_serves("US-CENTRAL1", "us-central1")
    assert not location_serves("US-CENTRAL1", "us-east1")
    assert not location_serves("EUROPE-WEST1", "us-central1")


def test_multi_regions_serve_their_continent() -> None:
    assert location_serves("US", "us-east4") and location_serves("EU", "europe-west1")
    assert location_serves("ASIA", "asia-east1")
    assert not location_serves("US", "europe-west1") and not location_serves("EU", "us-central1")
    assert not location_serves("US", "australia-southeast1")


def test_dual_regions_serve_their_two_regions() -> None:
    assert location_serves("NAM4", "us-central1") and location_serves("NAM4", "us-east1")
    assert not location_serves("NAM4", "us-west1")
    assert location_serves("EUR4", "europe-west4") and not location_serves("EUR4", "europe-west1")


def test_the_embedded_stacks_local_region_is_served_by_every_location() -> None:
    assert all(location_serves(loc, "local") for loc in LOCATIONS)


@given(regions, cases, cases)
def test_a_regions_own_location_serves_it_in_any_case(region: str, loc_case, reg_case) -> None:  # type: ignore[no-untyped-def]
    assert location_serves(loc_case(region), reg_case(region))


@given(locations, regions)
def test_serving_is_exactly_the_stated_rule(location: str, region: str) -> None:
    loc = location.lower()
    expected = (region.startswith(MULTI_REGIONS[loc]) if loc in MULTI_REGIONS
                else region in DUAL_REGIONS[loc] if loc in DUAL_REGIONS else loc == region)
    assert location_serves(location, region) is expected


@given(regions)
def test_a_multi_region_serves_every_region_of_its_continent_and_none_elsewhere(region: str) -> None:
    continent = region.split("-")[0]
    multi = {"us": "US", "europe": "EU", "asia": "ASIA"}[continent]
    assert location_serves(multi, region)
    assert not any(location_serves(other, region) for other in ("US", "EU", "ASIA") if other != multi)


@given(st.dictionaries(st.text("abcdefgh", min_size=3, max_size=8), locations, max_size=4),
       st.lists(regions, min_size=1, max_size=3, unique=True))
def test_a_job_is_refused_exactly_when_a_bucket_serves_none_of_its_regions(buckets, job_regions) -> None:  # type: ignore[no-untyped-def]
    remote = remote_buckets(job_regions, buckets)
    for bucket, loc in buckets.items():
        assert (bucket in remote) == (not any(location_serves(loc, r) for r in job_regions))
    problem = locality_problem(7, job_regions, buckets)
    assert (problem is None) == (not remote)
    if problem is not None:
        assert problem.startswith("job 7:") and all(r in problem for r in job_regions)
        assert all(f"gs://{b} is in {loc}" in problem for b, loc in remote.items())


@given(st.dictionaries(st.text("abc", min_size=3, max_size=5), locations, max_size=4))
def test_a_job_with_no_regions_runs_anywhere(buckets) -> None:  # type: ignore[no-untyped-def]
    assert locality_problem(1, None, buckets) is None


def test_the_message_names_job_bucket_location_and_regions() -> None:
    problem = locality_problem(3, ("us-central1", "us-east1"), {"eu-data": "EUROPE-WEST1", "us-data": "US"})
    assert problem == ("job 3: its files are not in any of its regions (us-central1, us-east1): gs://eu-data is in "
                       "EUROPE-WEST1; run it in a region its data is in, or copy the data to a bucket in one of its "
                       "regions")


def test_a_job_whose_regions_exclude_its_pools_region_can_never_run() -> None:
    pools = default_pools("us-central1")
    problem = region_misfit(("europe-west1",), "standard", True, pools)
    assert problem is not None
    assert "(europe-west1)" in problem and "pool standard" in problem and "region us-central1" in problem


def test_a_job_in_its_pools_region_or_with_no_regions_or_on_a_private_machine_fits() -> None:
    pools = default_pools("us-central1")
    assert region_misfit(("us-central1", "us-east1"), "standard", True, pools) is None
    assert region_misfit(None, "highmem", False, pools) is None
    assert region_misfit(("europe-west1",), "standard", True, pools, machine_type="n1-standard-8") is None
    assert region_misfit(("europe-west1",), "standard", True, ()) is None  # no pools configured: not checked
