"""events/catalog.py is generated from schemas/: it must be exactly what the generator produces."""

from __future__ import annotations

from events.catalog import EVENT_TYPES
from events.codegen import CATALOG_PATH, generate
from events.schema_registry import load_registry


def test_catalog_is_up_to_date_with_the_schemas() -> None:
    assert generate() == CATALOG_PATH.read_text(), "events/catalog.py is stale: run python -m events.codegen"


def test_every_schema_has_an_event_type_and_back() -> None:
    assert set(EVENT_TYPES) == set(load_registry().versions)
    for name, cls in EVENT_TYPES.items():
        assert name == cls.SCHEMA_NAME
        assert cls.TOPIC in {"batch", "instance", "heartbeat", "assignment", "control"}
