"""Data locality at submit (issue #18 item 4): a job whose gs:// inputs live in a bucket outside all
of its regions is refused with a 400 naming the job, the bucket, its location and the job's regions,
or, with `--data-locality warn`, accepted with that sentence as its attribute `squall.locality_warning`
(the job's record: hailtop's `Job.attributes()`, the UI's job page and the JobCreated event that
`audit` shows). `off` skips the check. The rule is the core's (events/core/locality.py).

The location comes from the object store (the bucket's `location`), cached per bucket for
`ttl_s` (a bucket's location never changes; the TTL only bounds memory of deleted buckets). A store
that cannot answer is a 503 (retry), a missing bucket a 400; neither is ever a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from events.catalog import JobSpec
from events.core.locality import locality_problem
from events.objectstore import (
    AccessDenied,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    parse_gs_url,
)
from services.front.errors import InvalidRequest, Unavailable

MODES = ("refuse", "warn", "off")
WARNING_ATTRIBUTE = "squall.locality_warning"


def input_buckets(spec: JobSpec) -> list[str]:
    """The buckets a job reads from: its input files and its JVM jar (shape already checked)."""
    urls = [c.src for c in spec.input_files] + ([spec.jar_url] if spec.jar_url else [])
    return sorted({parse_gs_url(u).bucket for u in urls})


class BucketLocations:
    """Each bucket's location, read from the store once per `ttl_s`."""

    def __init__(self, store: ObjectStore, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic,
                 max_entries: int = 10_000) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._cache: dict[str, tuple[str, float]] = {}
        self.lookups = 0  # store round trips, for tests

    async def location(self, bucket: str, field: str) -> str:
        now = self.clock()
        hit = self._cache.get(bucket)
        if hit is not None and hit[1] > now:
            return hit[0]
        self.lookups += 1
        try:
            location = await self.store.bucket_location(bucket)
        except ObjectNotFound:
            raise InvalidRequest(field, f"bucket {bucket!r} does not exist") from None
        except AccessDenied as exc:
            raise InvalidRequest(field, f"squall may not read the location of bucket {bucket!r} ({exc}); "
                                        "grant squall's service account storage.buckets.get on it") from None
        except ObjectStoreError as exc:  # StoreUnavailable, and any other failure of the store
            raise Unavailable(f"could not read the location of bucket {bucket!r} ({exc}); retry") from None
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[bucket] = (location, now + self.ttl_s)
        return location


async def check_locality(locations: BucketLocations | None, mode: str, specs: Sequence[tuple[int, int, JobSpec]],
                         field: str = "bunch") -> dict[int, str]:
    """`specs`: (index in the request, job id, spec). Raises InvalidRequest for the first job whose
    input buckets are all outside its regions (mode `refuse`); returns index -> warning (mode `warn`)."""
    warnings: dict[int, str] = {}
    if locations is None or mode == "off":
        return warnings
    for i, job_id, spec in specs:
        if spec.regions is None:
            continue  # any region: nothing to match
        buckets = input_buckets(spec)
        if not buckets:
            continue
        where = f"{field}[{i}].regions"
        found = {b: await locations.location(b, where) for b in buckets}
        problem = locality_problem(job_id, spec.regions, found)
        if problem is None:
            continue
        if mode == "refuse":
            raise InvalidRequest(where, problem)
        warnings[i] = problem
    return warnings
