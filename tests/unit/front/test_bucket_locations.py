"""The front's bucket-location cache (services/front/locality.py) over the in-memory store."""

from __future__ import annotations

import pytest

from events.objectstore import InMemoryObjectStore
from services.front.errors import InvalidRequest, Unavailable
from services.front.locality import BucketLocations


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_location_is_read_once_per_ttl() -> None:
    store, clock = InMemoryObjectStore(), Clock()
    await store.create_bucket("eu-data")
    store.locations["eu-data"] = "EU"
    locations = BucketLocations(store, ttl_s=60, clock=clock)
    assert await locations.location("eu-data", "f") == "EU"
    assert await locations.location("eu-data", "f") == "EU"
    assert locations.lookups == 1
    clock.now = 61
    assert await locations.location("eu-data", "f") == "EU"
    assert locations.lookups == 2


async def test_store_errors_are_a_400_or_a_503_never_anything_else() -> None:
    store = InMemoryObjectStore()
    locations = BucketLocations(store)
    with pytest.raises(InvalidRequest, match="does not exist"):
        await locations.location("absent", "bunch[0].regions")
    await store.create_bucket("b-1")
    store.outage = True
    with pytest.raises(Unavailable, match="'b-1'"):
        await locations.location("b-1", "bunch[0].regions")
