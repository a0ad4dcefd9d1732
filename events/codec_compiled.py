"""Avro binary encoders/decoders compiled to Python source per schema, for the codec's hot path.

fastavro is general: it walks the parsed schema for every datum, picks union branches by
validating the value against each branch, and needs dicts (`to_avro`/`from_avro`) on both sides.
For the current version of each event we know the schema ahead of time, so we generate straight-
line code that reads attributes of the event object and writes bytes, and reads bytes into the
dataclasses directly. That is ~3-4x faster. The output is byte-for-byte what fastavro writes
(tests/unit/events/test_codec_compiled.py proves it over every event type); anything these
generators do not support raises `Unsupported`, and the codec then keeps using fastavro.

Generated decoders read `b` (bytes) at position `p`; encoders return the bytes, joined once from
the pieces of every field (string, varint from a table, ...).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from itertools import count
from typing import Any

from events import catalog

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
Encoder = Callable[..., bytes]  # encode(event, head=b"")
Decoder = Callable[[bytes, int], Any]


class Unsupported(Exception):
    """The schema uses a construct these generators do not handle (fall back to fastavro)."""


class _Source:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._ids = count()

    def var(self, stem: str) -> str:
        return f"{stem}{next(self._ids)}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in names:
        return names[schema]
    if isinstance(schema, dict) and schema.get("type") == "record":
        names[schema["name"]] = schema
    return schema


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        if len(schema) == 2 and schema[0] == "null" and schema[1] != "null":
            return "optional"
        raise Unsupported(f"union {schema}")
    return schema if isinstance(schema, str) else str(schema["type"])


def _record_class(schema: dict[str, Any]) -> str:
    """The catalog class of a record; it must have exactly the schema's fields (a newer schema
    than the catalog, e.g. in a test's temporary schemas dir, falls back to fastavro)."""
    name = schema["name"]
    cls = getattr(catalog, name, None)
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise Unsupported(f"no class {name} in events.catalog")
    if {f.name for f in dataclasses.fields(cls)} != {f["name"] for f in schema["fields"]}:
        raise Unsupported(f"events.catalog.{name} does not have exactly the fields of its schema")
    return name


# --- encoding -------------------------------------------------------------------------------
# Varints come from tables of ready-made bytes: `_ZIGZAG[z]` is the varint of z for z < 2**14 (one
# or two bytes), `_MORE[z]` the two bytes of the low 14 bits of a longer one (continuation bits set).
_TABLE_BITS = 14
_ZIGZAG = tuple([bytes((z,)) for z in range(0x80)] + [bytes((z & 0x7F | 0x80, z >> 7)) for z in range(0x80, 1 << 14)])
_MORE = tuple([bytes((z & 0x7F | 0x80, z >> 7 | 0x80)) for z in range(1 << 14)])
# The varint of every small int and of every length below 2**13, looked up by the value itself
# (the zig-zag mapping v -> 2v or -2v-1 is folded in).
_SMALL = {v: _ZIGZAG[(v << 1) ^ (v >> 63)] for v in range(-(1 << (_TABLE_BITS - 1)), 1 << (_TABLE_BITS - 1))}
_LENGTH = tuple(_ZIGZAG[n << 1] for n in range(1 << (_TABLE_BITS - 1)))


def _zigzag_varint(v: int, lo: int, hi: int, what: str) -> bytes:
    """The varint of a value too large for `_SMALL` (range-checked: Avro int or long)."""
    if not lo <= v <= hi:
        raise ValueError(f"{what}: {v!r} out of range")
    z = (v << 1) ^ (v >> 63)
    if z < 1 << 14:
        return _ZIGZAG[z]
    if z < 1 << 28:
        return _MORE[z & 0x3FFF] + _ZIGZAG[z >> 14]
    if z < 1 << 42:  # millisecond timestamps
        return _MORE[z & 0x3FFF] + _MORE[(z >> 14) & 0x3FFF] + _ZIGZAG[z >> 28]
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _emit_varint(src: _Source, d: int, target: str, value: str, bounds: tuple[int, int], what: str) -> None:
    """`target` = the varint of int `value` (type already checked)."""
    src.emit(d, f"{target} = _small({value})")
    src.emit(d, f"if {target} is None: {target} = _zigzag_varint({value}, {bounds[0]}, {bounds[1]}, {what!r})")


def _emit_length(src: _Source, d: int, target: str, n: str) -> None:
    """`target` = the varint of `n`, a length (an int >= 0)."""
    src.emit(d, f"{target} = _LENGTH[{n}] if {n} < {1 << (_TABLE_BITS - 1)} else _zigzag_varint({n}, 0, {LONG_RANGE[1]}, '')")


def _emit_encode(src: _Source, d: int, schema: Any, expr: str, names: dict[str, Any], what: str) -> list[str]:
    """Emits code encoding `expr`; returns the expressions (locals or constants) of the bytes
    pieces it made, in order."""
    schema = _resolve(schema, names)
    kind = _kind(schema)
    if kind == "null":
        return []
    v = src.var("v")
    src.emit(d, f"{v} = {expr}")
    if kind in ("int", "long"):
        x = src.var("x")
        src.emit(d, f"if {v}.__class__ is not int: raise TypeError({what + ': expected int, got '!r} + type({v}).__name__)")
        _emit_varint(src, d, x, v, INT_RANGE if kind == "int" else LONG_RANGE, what)
        return [x]
    if kind == "boolean":
        x = src.var("x")
        src.emit(d, f"if {v} is True: {x} = b'\\x01'")
        src.emit(d, f"elif {v} is False: {x} = b'\\x00'")
        src.emit(d, f"else: raise TypeError({what + ': expected bool, got '!r} + type({v}).__name__)")
        return [x]
    if kind in ("string", "bytes"):
        py = "str" if kind == "string" else "bytes"
        src.emit(d, f"if {v}.__class__ is not {py}: raise TypeError({what + f': expected {py}, got '!r} + type({v}).__name__)")
        if kind == "string":
            src.emit(d, f"{v} = {v}.encode()")
        n, x = src.var("n"), src.var("x")
        src.emit(d, f"{n} = len({v})")
        _emit_length(src, d, x, n)
        return [x, v]
    if kind in ("float", "double"):
        x = src.var("x")
        src.emit(d, f"{x} = _pack_{kind}({v})")
        return [x]
    if kind == "optional":
        x = src.var("x")
        src.emit(d, f"if {v} is None:")
        src.emit(d + 1, f"{x} = b'\\x00'")
        src.emit(d, "else:")
        pieces = _emit_encode(src, d + 1, schema[1], v, names, what)
        src.emit(d + 1, f"{x} = {_joined(['_UNION_1', *pieces])}")  # union branch 1, zig-zag encoded
        return [x]
    if kind == "record":
        _record_class(schema)
        pieces = []
        for field in schema["fields"]:
            pieces += _emit_encode(src, d, field["type"], f"{v}.{field['name']}", names, f"{what}.{field['name']}")
        return pieces
    if kind in ("array", "map"):
        n, x, parts = src.var("n"), src.var("x"), src.var("a")
        src.emit(d, f"{n} = len({v})")
        src.emit(d, f"if {n}:")
        _emit_length(src, d + 1, x, n)
        src.emit(d + 1, f"{parts} = [{x}]")
        item = src.var("i")
        if kind == "array":
            src.emit(d + 1, f"for {item} in {v}:")
            pieces = _emit_encode(src, d + 2, schema["items"], item, names, f"{what}[]")
        else:
            key = src.var("k")
            src.emit(d + 1, f"for {key}, {item} in {v}.items():")
            pieces = _emit_encode(src, d + 2, "string", key, names, f"{what} key")
            pieces += _emit_encode(src, d + 2, schema["values"], item, names, f"{what}{{}}")
        if len(pieces) == 1:
            src.emit(d + 2, f"{parts}.append({pieces[0]})")
        elif pieces:
            src.emit(d + 2, f"{parts} += ({', '.join(pieces)})")
        src.emit(d + 1, f"{parts}.append(b'\\x00')")
        src.emit(d + 1, f"{x} = b''.join({parts})")
        src.emit(d, "else:")
        src.emit(d + 1, f"{x} = b'\\x00'")
        return [x]
    raise Unsupported(f"Avro type {kind}")


def _joined(pieces: list[str]) -> str:
    if len(pieces) <= 3:  # concatenating a few short bytes is cheaper than a join
        return " + ".join(pieces) or "b''"
    return f"b''.join(({', '.join(pieces)}))"


# --- decoding -------------------------------------------------------------------------------
# `_SHIFTED[i][c]` is the payload of byte c of a varint at position i, shifted into place.
_SHIFTED = tuple(tuple((c & 0x7F) << (7 * i) for c in range(0x100)) for i in range(10))


def _varint_tail(b: bytes, p: int, c: int) -> tuple[int, int]:
    """The zig-zag value and the position after a varint whose first byte `c` (>= 0x80) was just
    read and `b[p]` is the next: one table lookup and add per byte instead of mask, shift and or."""
    n = c & 0x7F
    for shifted in _SHIFTED[1:]:
        c = b[p]  # garbage ends at the end of the buffer (IndexError)
        p += 1
        n += shifted[c]
        if c < 0x80:
            return (n >> 1) ^ -(n & 1), p
    s = 70
    while c & 0x80:  # more than 10 bytes: not a 64-bit value, but read it as fastavro would
        c = b[p]
        p += 1
        n |= (c & 0x7F) << s
        s += 7
    return (n >> 1) ^ -(n & 1), p


def _emit_read_long(src: _Source, d: int, target: str) -> None:
    c = src.var("c")
    src.emit(d, f"{c} = b[p]")
    src.emit(d, "p += 1")
    src.emit(d, f"if {c} < 0x80: {target} = _ZZ[{c}]")
    src.emit(d, f"else: {target}, p = _varint_tail(b, p, {c})")


def _emit_decode(src: _Source, d: int, schema: Any, target: str, names: dict[str, Any]) -> None:
    schema = _resolve(schema, names)
    kind = _kind(schema)
    if kind == "null":
        src.emit(d, f"{target} = None")
    elif kind in ("int", "long"):
        _emit_read_long(src, d, target)
    elif kind == "boolean":
        src.emit(d, f"{target} = b[p]")
        src.emit(d, "p += 1")
        src.emit(d, f"if {target} > 1: raise ValueError('boolean byte ' + str({target}))")
        src.emit(d, f"{target} = {target} == 1")
    elif kind in ("string", "bytes"):
        n = src.var("n")
        _emit_read_long(src, d, n)
        q = src.var("q")
        src.emit(d, f"{q} = p + {n}")
        src.emit(d, f"if {n} < 0 or {q} > end: raise ValueError('length ' + str({n}) + ' runs past the end')")
        src.emit(d, f"{target} = b[p:{q}]" + (".decode()" if kind == "string" else ""))
        src.emit(d, f"p = {q}")
    elif kind in ("float", "double"):
        src.emit(d, f"{target} = _unpack_{kind}(b, p)[0]")
        src.emit(d, f"p += {4 if kind == 'float' else 8}")
    elif kind == "optional":
        branch = src.var("u")
        _emit_read_long(src, d, branch)
        src.emit(d, f"if {branch} == 0:")
        src.emit(d + 1, f"{target} = None")
        src.emit(d, f"elif {branch} == 1:")
        _emit_decode(src, d + 1, schema[1], target, names)
        src.emit(d, "else:")
        src.emit(d + 1, f"raise ValueError('union branch ' + str({branch}))")
    elif kind == "record":
        fields = []
        for field in schema["fields"]:
            value = src.var("f")
            _emit_decode(src, d, field["type"], value, names)
            fields.append((field["name"], value))
        cls_name = _record_class(schema)
        if cls_name in _BUILDERS:
            # Frozen dataclasses set each field through object.__setattr__; instead fill a plain
            # slotted twin of the class with ordinary (fast) attribute stores, then make it an
            # instance of the real class (same layout, so `__class__` may be assigned): 4x cheaper
            # than keyword __init__ for a 16-field event.
            src.emit(d, f"{target} = _new(_Builder_{cls_name})")
            for name, value in fields:
                src.emit(d, f"{target}.{name} = {value}")
            src.emit(d, f"{target}.__class__ = {cls_name}")
        else:
            src.emit(d, f"{target} = {cls_name}({', '.join(f'{name}={value}' for name, value in fields)})")
    elif kind in ("array", "map"):
        if kind == "map" and _kind(_resolve(schema["values"], names)) in ("record", "array", "map"):
            raise Unsupported("maps of records or containers (from_avro keeps them as dicts)")
        items, block, ignored, i = src.var("a"), src.var("n"), src.var("z"), src.var("i")
        src.emit(d, f"{items} = []" if kind == "array" else f"{items} = {{}}")
        src.emit(d, "while True:")
        _emit_read_long(src, d + 1, block)
        src.emit(d + 1, f"if {block} == 0: break")
        src.emit(d + 1, f"if {block} < 0:")  # a negative count is followed by the block's byte size
        src.emit(d + 2, f"{block} = -{block}")
        _emit_read_long(src, d + 2, ignored)
        # every item type in our schemas takes at least one byte, so a larger count is garbage
        src.emit(d + 1, f"if {block} > end - p: raise ValueError('count ' + str({block}) + ' runs past the end')")
        src.emit(d + 1, f"for {i} in range({block}):")
        value = src.var("x")
        if kind == "array":
            _emit_decode(src, d + 2, schema["items"], value, names)
            src.emit(d + 2, f"{items}.append({value})")
            src.emit(d, f"{target} = tuple({items})")
        else:
            key = src.var("k")
            _emit_decode(src, d + 2, "string", key, names)
            _emit_decode(src, d + 2, schema["values"], value, names)
            src.emit(d + 2, f"{items}[{key}] = {value}")
            src.emit(d, f"{target} = {items}")
    else:
        raise Unsupported(f"Avro type {kind}")


def _builder(cls: type) -> type | None:
    """A mutable class with the slots of `cls`, whose instances may become instances of `cls` by
    `__class__` assignment; None when `cls` is not a slotted class whose __init__ only stores the
    fields (a __post_init__ must run) or Python refuses the assignment."""
    if "__slots__" not in vars(cls) or hasattr(cls, "__post_init__") or cls.__bases__ != (object,):
        return None
    builder = type(f"_Builder_{cls.__name__}", (), {"__slots__": vars(cls)["__slots__"]})
    probe: Any = object.__new__(builder)
    try:
        probe.__class__ = cls
    except TypeError:
        return None
    return builder


def _catalog_classes() -> dict[str, type]:
    return {name: cls for name, cls in vars(catalog).items()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == catalog.__name__}


_BUILDERS = {name: builder for name, cls in _catalog_classes().items() if (builder := _builder(cls)) is not None}


_GLOBALS = {"_pack_float": struct.Struct("<f").pack, "_pack_double": struct.Struct("<d").pack,
            "_small": _SMALL.get, "_LENGTH": _LENGTH, "_zigzag_varint": _zigzag_varint, "_UNION_1": b"\x02",
            "_unpack_float": struct.Struct("<f").unpack_from, "_unpack_double": struct.Struct("<d").unpack_from,
            "_new": object.__new__, "_varint_tail": _varint_tail, "_ZZ": tuple((c >> 1) ^ -(c & 1) for c in range(0x80)), **_catalog_classes(),
            **{f"_Builder_{name}": builder for name, builder in _BUILDERS.items()}}


def encoder_source(schema: dict[str, Any]) -> str:
    src = _Source()
    src.emit(0, "def encode(e, head=b''):")
    pieces = _emit_encode(src, 1, schema, "e", {}, schema["name"])
    src.emit(1, f"return b''.join((head, {''.join(p + ', ' for p in pieces)}))")
    return "\n".join(src.lines) + "\n"


def decoder_source(schema: dict[str, Any]) -> str:
    src = _Source()
    src.emit(0, "def decode(b, p):")
    src.emit(1, "end = len(b)")
    _emit_decode(src, 1, schema, "result", {})
    src.emit(1, "if p != end: raise ValueError(str(end - p) + ' bytes left after the record')")
    src.emit(1, "return result")
    return "\n".join(src.lines) + "\n"


def _compile(source: str, name: str) -> Any:
    namespace: dict[str, Any] = dict(_GLOBALS)
    exec(compile(source, f"<compiled avro {name}>", "exec"), namespace)  # our own generated code
    return namespace[source.split("(", 1)[0].removeprefix("def ")]


def compile_encoder(schema: dict[str, Any]) -> Encoder:
    """`encode(event, head=b"")` returns `head` + the Avro binary body of `event` (a catalog object)."""
    return _compile(encoder_source(schema), schema["name"])  # type: ignore[no-any-return]


def compile_decoder(schema: dict[str, Any]) -> Decoder:
    """`decode(data, offset)` reads the body at `offset` (to the end) into a catalog object."""
    return _compile(decoder_source(schema), schema["name"])  # type: ignore[no-any-return]
