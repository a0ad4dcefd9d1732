"""The Cython encoders and decoders (events/_avro_codec.pyx) give exactly what the Python ones give
(and so fastavro's bytes), are generated from today's schemas, and are used only when built from
that source."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import codec_cython
from events.catalog import EVENT_TYPES
from events.codec import HEADER_LEN, Codec
from events.codec_compiled import compile_decoder, compile_encoder
from events.errors import DecodeError
from events.schema_registry import load_registry
from tests.unit.events.avro_samples import event_strategy, example_event

ALL_EVENTS = sorted(EVENT_TYPES)


def extension() -> dict[bytes, Any]:
    decoders = codec_cython.extension_decoders()
    if not decoders:
        pytest.fail("events._avro_codec is not built from the current .pyx: run `make venv` "
                    "(pip install -e . builds it; it needs a C compiler)")
    return decoders


def encoders() -> dict[bytes, Any]:
    extension()
    return codec_cython.extension()[1]


def test_the_checked_in_pyx_is_generated_from_the_current_schemas() -> None:
    assert codec_cython.PYX_PATH.read_text() == codec_cython.module_source(), "run python -m events.codegen"


def test_the_codec_decodes_every_current_event_with_the_extension() -> None:
    extension()
    assert Codec().extension_decoders == Codec().extension_encoders == len(EVENT_TYPES)
    assert Codec(extension=False).extension_decoders == Codec(extension=False).extension_encoders == 0


def test_a_stale_extension_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    extension()
    monkeypatch.setattr(codec_cython, "pyx_digest", lambda path=None: "another source")
    assert codec_cython.extension_decoders() == {}
    assert Codec().extension_decoders == 0


@pytest.mark.parametrize("event_name", ALL_EVENTS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_extension_decodes_what_python_decodes(event_name: str, data: st.DataObject) -> None:
    schema = load_registry().current(event_name)
    decode = extension()[schema.fingerprint]
    event = data.draw(event_strategy(event_name))
    body = compile_encoder(schema.raw)(event, b"0123456789")
    decoded = decode(body, HEADER_LEN)  # type: ignore[operator]
    assert decoded == event
    assert type(decoded) is type(event)
    assert compile_decoder(schema.raw)(body, HEADER_LEN) == decoded


@pytest.mark.parametrize("event_name", ALL_EVENTS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_extension_encodes_the_bytes_python_encodes(event_name: str, data: st.DataObject) -> None:
    """The Python encoders write fastavro's bytes (test_codec_compiled.py); these write theirs."""
    schema = load_registry().current(event_name)
    event = data.draw(event_strategy(event_name))
    assert encoders()[schema.fingerprint](event, b"head") == b"head" + compile_encoder(schema.raw)(event)


@pytest.mark.parametrize("text_len", [0, 1, 63, 64, 8191, 8192, 20_000])
def test_extension_encodes_varint_edges_as_python_does(text_len: int) -> None:
    schema = load_registry().current("JobCreated")
    encode, python_encode = encoders()[schema.fingerprint], compile_encoder(schema.raw)
    near = {sign * 2**k + delta for k in range(64) for sign in (1, -1) for delta in (-1, 0, 1)}
    longs = sorted(v for v in near | {-(2**63), 2**63 - 1} if -(2**63) <= v < 2**63)
    ints = [v for v in longs if -(2**31) <= v < 2**31]
    for i, batch_id in enumerate(longs):
        event = replace(example_event("JobCreated"), batch_id=batch_id, job_id=ints[i % len(ints)],
                        parent_ids=tuple(ints[i:i + 3]), user="ü" * text_len)
        assert encode(event) == python_encode(event), batch_id


@pytest.mark.parametrize(("event_name", "field", "value"), [
    ("BatchCreated", "batch_id", "7"), ("BatchCreated", "batch_id", 2**63), ("BatchCreated", "batch_id", -(2**70)),
    ("JobCreated", "job_id", 2**31), ("JobCreated", "job_id", True), ("BatchCreated", "user", None),
    ("BatchCreated", "attributes", {"k": 1}), ("BatchCreated", "attributes", {1: "v"}),
    ("JobCreated", "always_run", 1), ("JobCreated", "parent_ids", ("1",)), ("BatchCreated", "user", "\ud800"),
    ("BatchCreated", "callback", 5),
])
def test_extension_refuses_what_python_refuses_with_the_same_message(event_name: str, field: str,
                                                                   value: object) -> None:
    schema = load_registry().current(event_name)
    event = replace(example_event(event_name), **{field: value})
    with pytest.raises(Exception) as python:
        compile_encoder(schema.raw)(event)
    with pytest.raises(type(python.value)) as compiled:
        encoders()[schema.fingerprint](event)
    if not isinstance(python.value, UnicodeError):
        assert str(compiled.value) == str(python.value)


@pytest.mark.parametrize("event_name", ALL_EVENTS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.integers(min_value=0), noise=st.binary(min_size=1, max_size=12), cut=st.booleans())
def test_extension_fails_where_python_fails(event_name: str, position: int, noise: bytes, cut: bool) -> None:
    """Garbled or truncated bodies: either both decoders give the same event, or both raise
    (the extension may also refuse a varint longer than 64 bits, which Python reads as a big int)."""
    schema = load_registry().current(event_name)
    body = compile_encoder(schema.raw)(example_event(event_name, 1))
    at = position % len(body)
    garbled = body[:at] + (b"" if cut else noise + body[at + len(noise):])
    try:
        expected: object = compile_decoder(schema.raw)(garbled, 0)
    except Exception as exc:  # noqa: BLE001 - the Python decoders fail in assorted ways
        expected = exc
    try:
        got: object = extension()[schema.fingerprint](garbled, 0)  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001
        assert isinstance(expected, Exception) or "64 bits" in str(exc), (exc, expected)
        return
    assert got == expected


def test_garbage_through_the_codec_is_a_decode_error() -> None:
    codec = Codec()
    event = example_event("JobCreated", 2)
    data = codec.encode(event)
    for cut in range(HEADER_LEN, len(data)):
        with pytest.raises(DecodeError):
            codec.decode(data[:cut])
    with pytest.raises(DecodeError):
        codec.decode(data + b"\x00")
    assert codec.decode(bytearray(data)) == event
