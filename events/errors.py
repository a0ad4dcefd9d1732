"""Errors of the events package: what went wrong with a message or the log, by type."""

from __future__ import annotations


class EventsError(Exception):
    """Base of every error raised by the events package."""


class DecodeError(EventsError):
    """A message from the log cannot be turned into an event. Quarantine it; do not crash."""


class CorruptEvent(DecodeError):
    """The bytes are not a valid single-object-encoded event (bad header, truncated or garbled body)."""


class UnknownSchemaFingerprint(DecodeError):
    """The writer schema's fingerprint is not any version in schemas/ (a newer producer, or garbage)."""

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint.hex()}: not any version in schemas/; "
            "upgrade this reader or check the producer"
        )


class UnknownEventType(EventsError):
    """An event type that has no schema in schemas/."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no schema for event type {name!r} in schemas/")


class UnprojectableEvent(EventsError):
    """A well-formed event a fold cannot apply: it names what the log never created, or says something
    impossible (a job group its own parent, a spec that is not JSON). Quarantine it and go on.

    Folds raise only this for what an event says; anything else they raise (KeyError, TypeError,
    AttributeError, ...) is a bug in the fold and must crash the process, never be quarantined."""


class LogError(EventsError):
    """The event log (Kafka) failed an operation."""


class LogAuthorizationError(LogError):
    """The broker refused this principal the operation (no ACL allows it)."""
