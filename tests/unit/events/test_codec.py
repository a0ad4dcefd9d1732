"""The codec: every event type round-trips, and bad bytes give typed errors, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import EVENT_TYPES, Event
from events.codec import HEADER_LEN, MAGIC, Codec
from events.errors import CorruptEvent, DecodeError, UnknownSchemaFingerprint
from events.schema_registry import load_registry
from tests.unit.events.avro_samples import event_strategy, example_event

CODEC = Codec()
ALL_EVENTS = sorted(EVENT_TYPES)
any_event = st.one_of(*(event_strategy(name) for name in ALL_EVENTS))


@pytest.mark.parametrize("event_name", ALL_EVENTS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_type_round_trips(event_name: str, data: st.DataObject) -> None:
    event = data.draw(event_strategy(event_name))
    encoded = CODEC.encode(event)
    assert encoded[:2] == MAGIC
    assert encoded[2:HEADER_LEN] == load_registry().current(event_name).fingerprint
    assert CODEC.decode(encoded) == event
    assert CODEC.event_name_of(encoded) == event_name


@pytest.mark.parametrize("event_name", ALL_EVENTS)
def test_a_fully_populated_example_round_trips(event_name: str) -> None:
    event = example_event(event_name)
    assert CODEC.decode(CODEC.encode(event)) == event


def _valid() -> bytes:
    return CODEC.encode(example_event("JobCreated"))


@pytest.mark.parametrize("data", [b"", b"\xc3", b"\xc3\x01\x00", b"{}", b"\xc3\x02" + _valid()[2:],
                                  b"\x00\x01" + _valid()[2:]],
                         ids=["empty", "one-byte", "short-header", "json", "bad-version", "bad-magic"])
def test_bad_header_is_corrupt_event(data: bytes) -> None:
    with pytest.raises(CorruptEvent, match="single-object"):
        CODEC.decode(data)


def test_unknown_fingerprint_names_it() -> None:
    data = MAGIC + bytes.fromhex("0102030405060708") + _valid()[HEADER_LEN:]
    with pytest.raises(UnknownSchemaFingerprint, match="0102030405060708") as err:
        CODEC.decode(data)
    assert err.value.fingerprint == bytes.fromhex("0102030405060708")
    assert CODEC.event_name_of(data) is None


@pytest.mark.parametrize("cut", [1, 2, 10, 100])
def test_truncated_body_is_corrupt_event(cut: int) -> None:
    with pytest.raises(CorruptEvent, match="JobCreated v2"):
        CODEC.decode(_valid()[:-cut])


def test_trailing_garbage_is_corrupt_event() -> None:
    with pytest.raises(CorruptEvent, match="left after the record"):
        CODEC.decode(_valid() + b"\x00")


def test_header_only_is_corrupt_event() -> None:
    with pytest.raises(CorruptEvent):
        CODEC.decode(_valid()[:HEADER_LEN])


def _decode_or_decode_error(data: bytes) -> Event | DecodeError:
    try:
        return CODEC.decode(data)
    except DecodeError as exc:  # the only kind of error a reading loop must expect
        return exc


@settings(max_examples=150, deadline=None)
@given(event=any_event, position=st.integers(min_value=0), replacement=st.binary(min_size=1, max_size=4))
def test_garbled_bodies_decode_or_raise_decode_error(event: Event, position: int, replacement: bytes) -> None:
    data = bytearray(CODEC.encode(event))
    at = HEADER_LEN + position % max(1, len(data) - HEADER_LEN)
    data[at:at + len(replacement)] = replacement
    _decode_or_decode_error(bytes(data))


@settings(max_examples=150, deadline=None)
@given(noise=st.binary(max_size=64), fingerprint=st.sampled_from(sorted(load_registry().by_fingerprint())))
def test_random_bodies_decode_or_raise_decode_error(noise: bytes, fingerprint: bytes) -> None:
    _decode_or_decode_error(MAGIC + fingerprint + noise)
    _decode_or_decode_error(noise)


def test_a_reading_loop_survives_bad_messages_and_reports_them() -> None:
    good = [example_event(name) for name in ALL_EVENTS[:5]]
    messages = [CODEC.encode(good[0]), b"garbage", CODEC.encode(good[1]), _valid()[:-3],
                MAGIC + b"\xff" * 8 + b"body", *(CODEC.encode(e) for e in good[2:])]
    decoded, quarantined = [], []
    for offset, data in enumerate(messages):
        outcome = _decode_or_decode_error(data)
        (quarantined if isinstance(outcome, DecodeError) else decoded).append((offset, outcome))
    assert [e for _, e in decoded] == good
    assert [offset for offset, _ in quarantined] == [1, 3, 4]
    assert [type(e) for _, e in quarantined] == [CorruptEvent, CorruptEvent, UnknownSchemaFingerprint]
