"""Data locality: whether a bucket's location serves a job's allowed regions (issue #18 item 4).

A GCS bucket's `location` is a region (`US-CENTRAL1`), a predefined dual-region (`NAM4`), or a
multi-region (`US`, `EU`, `ASIA`). The matching rule, case-insensitive:
- a region location serves exactly that region (`US-CENTRAL1` serves `us-central1`);
- a multi-region serves every region of its continent: `US` serves `us-*`, `EU` serves `europe-*`,
  `ASIA` serves `asia-*` (GCS stores such a bucket's data somewhere on that continent);
- a predefined dual-region serves its two regions (`NAM4`: us-central1 and us-east1; `EUR4`:
  europe-north1 and europe-west4; `ASIA1`: asia-northeast1 and asia-northeast2); a configurable
  dual-region reports its multi-region as location, which the rule above covers;
- the region `local` (the embedded stack's one region, where its embedded store is) is served by
  every location.
A job with no regions (Hail's "any region") has nothing to check. Pure: no I/O; the front looks
the locations up (services/front/locality.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

LOCAL_REGION = "local"
MULTI_REGIONS: dict[str, str] = {"us": "us-", "eu": "europe-", "asia": "asia-"}
DUAL_REGIONS: dict[str, frozenset[str]] = {
    "nam4": frozenset({"us-central1", "us-east1"}),
    "eur4": frozenset({"europe-north1", "europe-west4"}),
    "asia1": frozenset({"asia-northeast1", "asia-northeast2"}),
}


def location_serves(location: str, region: str) -> bool:
    """Whether a bucket in `location` is local to a worker in `region`."""
    loc, reg = location.strip().lower(), region.strip().lower()
    if reg == LOCAL_REGION:
        return True
    if loc in MULTI_REGIONS:
        return reg.startswith(MULTI_REGIONS[loc])
    if loc in DUAL_REGIONS:
        return reg in DUAL_REGIONS[loc]
    return loc == reg


def remote_buckets(regions: Sequence[str] | None, locations: Mapping[str, str]) -> dict[str, str]:
    """The buckets (name -> location) that none of `regions` is served by; empty when `regions` is
    None (any region) or every bucket is local to one of them."""
    if regions is None:
        return {}
    return {bucket: loc for bucket, loc in sorted(locations.items())
            if not any(location_serves(loc, r) for r in regions)}


def locality_problem(job_id: int, regions: Sequence[str] | None, locations: Mapping[str, str]) -> str | None:
    """None when the job's buckets are all local to one of its regions; else a sentence naming the
    job, each remote bucket and its location, and the job's regions."""
    remote = remote_buckets(regions, locations)
    if not remote:
        return None
    assert regions is not None
    where = ", ".join(f"gs://{b} is in {loc}" for b, loc in remote.items())
    return (f"job {job_id}: its files are not in any of its regions ({', '.join(regions)}): {where}; "
            f"run it in a region its data is in, or copy the data to a bucket in one of its regions")
