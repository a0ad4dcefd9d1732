"""Envelope helpers: deterministic ids for derived events, and the key an event is partitioned by."""

from __future__ import annotations

import hashlib

from events.catalog import Event


def derived_event_id(kind: str, *parts: object) -> str:
    """A stable id for an event a processor derives: the same inputs always give the same id,
    so re-deriving after a crash or rebalance yields a recognisably identical event."""
    text = kind + "|" + "|".join(str(p) for p in parts)
    return kind + ":" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def event_key(event: Event) -> bytes:
    """The partitioning key: batch_id for batch events, instance_name for instance/assignment events."""
    field = event.KEY_FIELD
    if field is None:
        return b"control"
    return str(getattr(event, field)).encode()
