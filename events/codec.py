"""Avro single-object encoding of events (`C3 01` + 8-byte CRC-64-AVRO fingerprint + body).

The reader resolves the writer schema by fingerprint over every version in `schemas/`, and reads
with the current version of that event, so old messages decode into today's types.

Speed: events written with the current schema (almost all of them) go through encoders/decoders
compiled from that schema (events/codec_compiled.py, byte-identical to fastavro), and are decoded
and encoded by the Cython extension built from the same schemas when it is installed
(events/codec_cython.py: the same bytes and errors, several times faster); older writer versions go through fastavro's schema resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from fastavro import schemaless_reader, schemaless_writer

from events.catalog import EVENT_TYPES, Event
from events.codec_compiled import Decoder, Encoder, Unsupported, compile_decoder, compile_encoder
from events.codec_cython import extension as compiled_extension
from events.errors import CorruptEvent, UnknownEventType, UnknownSchemaFingerprint
from events.schema_registry import Registry, SchemaVersion, load_registry

MAGIC = b"\xc3\x01"
HEADER_LEN = 10


@dataclass(frozen=True, slots=True)
class _Compiled:
    header: bytes  # magic + fingerprint of the current version
    encode: Encoder
    decode: Decoder


def _compiled(schema: SchemaVersion) -> _Compiled | None:
    try:
        return _Compiled(MAGIC + schema.fingerprint, compile_encoder(schema.raw), compile_decoder(schema.raw))
    except Unsupported:
        return None


class Codec:
    """Encodes current-version events; decodes any known version. Safe to share."""

    def __init__(self, registry: Registry | None = None, extension: bool = True) -> None:
        """`extension`: encode and decode with the Cython extension where it is built and current."""
        self._registry = registry or load_registry()
        self._writers = {name: self._registry.current(name) for name in self._registry.versions}
        self._by_fp: dict[bytes, SchemaVersion] = self._registry.by_fingerprint()
        missing = set(self._writers) ^ set(EVENT_TYPES)
        if missing:
            raise RuntimeError(f"events/catalog.py is stale (run python -m events.codegen): {sorted(missing)}")
        self._compiled_by_name: dict[str, _Compiled] = {}
        self._compiled_by_fp: dict[bytes, _Compiled] = {}
        for name, schema in self._writers.items():
            compiled = _compiled(schema)
            if compiled is not None:
                self._compiled_by_name[name] = compiled
                self._compiled_by_fp[schema.fingerprint] = compiled
        # The hot path of decode: the whole header (magic + fingerprint) -> compiled decoder.
        self._decoders = {compiled.header: compiled.decode for compiled in self._compiled_by_fp.values()}
        self.extension_decoders = self.extension_encoders = 0  # how many are the extension's
        if extension:
            decoders, encoders = compiled_extension()
            for fp, decode in decoders.items():
                if fp in self._compiled_by_fp:  # generated from the schema this codec reads with
                    self._decoders[MAGIC + fp] = decode
                    self.extension_decoders += 1
            for name, compiled in list(self._compiled_by_name.items()):
                encode = encoders.get(compiled.header[2:])
                if encode is not None:
                    self._compiled_by_name[name] = _Compiled(compiled.header, encode, compiled.decode)
                    self.extension_encoders += 1

    def encode(self, event: Event) -> bytes:
        compiled = self._compiled_by_name.get(event.SCHEMA_NAME)
        if compiled is not None:
            return compiled.encode(event, compiled.header)
        try:
            schema = self._writers[event.SCHEMA_NAME]
        except KeyError:
            raise UnknownEventType(event.SCHEMA_NAME) from None
        buf = BytesIO()
        buf.write(MAGIC + schema.fingerprint)
        schemaless_writer(buf, schema.parsed, event.to_avro())
        return buf.getvalue()

    def decode(self, data: bytes) -> Event:
        if type(data) is not bytes:
            data = bytes(data)
        decode = self._decoders.get(data[:HEADER_LEN])
        if decode is not None:
            try:
                return decode(data, HEADER_LEN)  # type: ignore[no-any-return]
            except Exception as exc:  # truncated or garbled bodies fail in assorted ways
                current = self._by_fp[data[2:HEADER_LEN]]
                raise CorruptEvent(f"{current.event_name} v{current.version}: body does not decode: {exc!r}") from exc
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            raise CorruptEvent(f"not Avro single-object encoded: expected header C3 01, got {data[:2].hex() or 'nothing'}")
        fp = data[2:HEADER_LEN]
        writer = self._by_fp.get(fp)
        if writer is None:
            raise UnknownSchemaFingerprint(fp)
        reader = self._writers[writer.event_name]
        # Schema resolution costs more than the read itself: skip it when the writer is current.
        reader_schema = None if reader is writer else reader.parsed
        try:
            body = BytesIO(data)
            body.seek(HEADER_LEN)
            record = schemaless_reader(body, writer.parsed, reader_schema)
            if body.tell() != len(data):
                raise ValueError(f"{len(data) - body.tell()} bytes left after the record")
            return EVENT_TYPES[writer.event_name].from_avro(record)  # type: ignore[arg-type]
        except Exception as exc:  # fastavro raises assorted errors on truncated or garbled bodies
            raise CorruptEvent(f"{writer.event_name} v{writer.version}: body does not decode: {exc!r}") from exc

    def event_name_of(self, data: bytes) -> str | None:
        """The event type named by a message's fingerprint, without decoding the body."""
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            return None
        writer = self._by_fp.get(bytes(data[2:HEADER_LEN]))
        return writer.event_name if writer else None
