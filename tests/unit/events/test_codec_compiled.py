"""The compiled encoders/decoders are byte-for-byte fastavro, for every event type."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from io import BytesIO

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalog import EVENT_TYPES
from events.codec import HEADER_LEN, Codec
from events.codec_compiled import Unsupported, compile_decoder, compile_encoder, decoder_source
from events.errors import CorruptEvent
from events.schema_registry import load_registry
from tests.unit.events.avro_samples import event_strategy, example_event

ALL_EVENTS = sorted(EVENT_TYPES)


@pytest.mark.parametrize("event_name", ALL_EVENTS)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_bytes_equal_fastavro_bytes_and_decode_back(event_name: str, data: st.DataObject) -> None:
    schema = load_registry().current(event_name)
    event = data.draw(event_strategy(event_name))
    out = compile_encoder(schema.raw)(event)
    reference = BytesIO()
    schemaless_writer(reference, schema.parsed, event.to_avro())
    assert out == reference.getvalue()
    assert compile_decoder(schema.raw)(out, 0) == event
    assert EVENT_TYPES[event_name].from_avro(schemaless_reader(BytesIO(out), schema.parsed, None)) == event


def test_every_current_schema_is_compiled() -> None:
    codec = Codec()
    assert set(codec._compiled_by_name) == set(EVENT_TYPES)  # none silently falls back to fastavro


def test_decoding_accepts_bytearray_and_memoryview() -> None:
    codec = Codec()
    data = codec.encode(example_event("JobCreated"))
    assert codec.decode(bytearray(data)) == codec.decode(memoryview(data)) == example_event("JobCreated")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("batch_id", "7", "batch_id: expected int"), ("batch_id", 2**63, "batch_id: .* out of range"),
    ("user", None, "user: expected str"), ("attributes", {"k": 1}, "attributes"),
])
def test_encoding_a_wrong_value_names_the_field(field: str, value: object, message: str) -> None:
    event = replace(example_event("BatchCreated"), **{field: value})
    with pytest.raises((TypeError, ValueError), match=message):
        Codec().encode(event)


def test_a_schema_newer_than_the_catalog_is_not_compiled() -> None:
    schema = dict(load_registry().current("BatchDeleted").raw)
    schema["fields"] = [*schema["fields"], {"name": "extra", "type": ["null", "int"], "default": None}]
    with pytest.raises(Unsupported, match="fields"):
        compile_decoder(schema)


def test_generated_source_is_readable_python() -> None:
    source = decoder_source(load_registry().current("InstanceHeartbeat").raw)
    assert source.startswith("def decode(b, p):")
    compile(source, "<test>", "exec")


@pytest.mark.parametrize("body", [b"\xff" * 12, b"\x80" * 40, b"\x02\x03"])
def test_garbage_varints_are_corrupt_events(body: bytes) -> None:
    codec = Codec()
    header = codec.encode(example_event("JobCreated"))[:HEADER_LEN]
    with pytest.raises(CorruptEvent):
        codec.decode(header + body)


def _edges(bits: int) -> list[int]:
    """Every power of two and its neighbours, both signs, within a signed `bits`-bit int."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    near = {sign * 2**k + delta for k in range(bits) for sign in (1, -1) for delta in (-1, 0, 1)}
    return sorted(v for v in near | {lo, hi, 0} if lo <= v <= hi)


@pytest.mark.parametrize("text_len", [0, 1, 63, 64, 8191, 8192, 20_000])
def test_varint_table_edges_are_byte_identical(text_len: int) -> None:
    """The encoders take varints from tables up to 2**14 and build longer ones piecewise: every
    power-of-two boundary of an int and a long field, and long strings, against fastavro."""
    schema = load_registry().current("JobCreated")
    encode, decode = compile_encoder(schema.raw), compile_decoder(schema.raw)
    longs, ints = _edges(64), _edges(32)
    for i, batch_id in enumerate(longs):
        event = replace(example_event("JobCreated"), batch_id=batch_id, job_id=ints[i % len(ints)],
                        parent_ids=tuple(ints[i:i + 3]), user="u" * text_len)
        reference = BytesIO()
        schemaless_writer(reference, schema.parsed, event.to_avro())
        assert encode(event) == reference.getvalue(), (batch_id, ints[i % len(ints)])
        assert decode(reference.getvalue(), 0) == event


def test_encoding_a_bool_field_rejects_ints() -> None:
    event = replace(example_event("JobCreated"), always_run=1)
    with pytest.raises(TypeError, match="always_run: expected bool, got int"):
        Codec().encode(event)


def test_decoded_events_are_the_real_frozen_classes() -> None:
    """Decoders fill a mutable twin of each class and then assign `__class__`: the result must be
    indistinguishable from an object built by the constructor."""
    codec = Codec()
    for name in ALL_EVENTS:
        event = example_event(name)
        decoded = codec.decode(codec.encode(event))
        assert type(decoded) is type(event) and decoded == event
        try:
            expected_hash = hash(event)
        except TypeError:  # a dict field
            expected_hash = None
        if expected_hash is not None:
            assert hash(decoded) == expected_hash
        with pytest.raises(FrozenInstanceError):
            decoded.event_id = "changed"  # type: ignore[misc]
    spec = codec.decode(codec.encode(example_event("JobCreated"))).spec  # type: ignore[attr-defined]
    assert type(spec) is type(example_event("JobCreated").spec)  # type: ignore[attr-defined]
    assert replace(spec, port=1).port == 1
