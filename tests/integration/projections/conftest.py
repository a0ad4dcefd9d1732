"""Fixtures of the projection integration tests: a database with the read-model tables."""

from __future__ import annotations

import pytest

from projections.db import READMODEL_MIGRATIONS, migrate


@pytest.fixture
def readmodel_db(fresh_db: str) -> str:
    """A fresh database with the read-model tables in schema public."""
    migrate(fresh_db, [READMODEL_MIGRATIONS])
    return fresh_db
