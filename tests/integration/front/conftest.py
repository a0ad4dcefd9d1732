"""Fixtures for the front end's endpoint tests (the harness itself is front_harness.py).

`front` is an in-process client (httpx over ASGI) authenticated as alice, over the memory log, a
migrated fresh database and the session's GCS-API server (squall's bucket created in it);
`front.bob` holds a second user's headers, to prove users cannot see each other's batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from front_harness import Front, make_front

from events.log import EventLog
from events.objectstore import ObjectStore
from events.topics import Topics


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hail: runs the unmodified Hail Batch client (hailtop) against the front end")


@pytest.fixture
async def front(fresh_db: str, memory_log: EventLog, topics: Topics, gcs_store: ObjectStore,
                bucket_name: str) -> AsyncIterator[Front]:
    async for f in make_front(fresh_db, memory_log, topics, gcs_store, bucket_name):
        yield f
