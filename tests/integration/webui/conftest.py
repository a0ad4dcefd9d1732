"""Fixtures: the UI mounted at /ui over a seeded read-model database (webui_seed.py), and a fake API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from webui_seed import RecordingTransport, UiDb, mounted_ui, seed

from deploy.postgres import create_database, drop_database


@pytest.fixture(scope="module")
def ui_db(pg_url: str, storage_endpoint: str) -> Iterator[UiDb]:
    """Seeded once per module: the UI only reads, so its tests can share one database and bucket."""
    name = f"webui_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_url, name)
    db = UiDb(url, storage_endpoint, f"webui-{uuid.uuid4().hex[:12]}")
    seed(db)
    try:
        yield db
    finally:
        drop_database(pg_url, name)


@pytest.fixture
def api() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def client(ui_db: UiDb, api: RecordingTransport) -> Iterator[TestClient]:
    """The UI mounted at /ui, as the front end will mount it."""
    with mounted_ui(ui_db, api) as test_client:
        yield test_client
