"""Avro binary encoders/decoders compiled to Python source per schema, for the codec's hot path.

fastavro is general: it walks the parsed schema for every datum, picks union branches by
validating the value against each branch, and needs dicts (`to_avro`/`from_avro`) on both sides.
For the current version of each event we know the schema ahead of time, so we generate straight-
line code that reads attributes of the event object and writes bytes, and reads bytes into the
dataclasses directly. That is ~3-4x faster. The output is byte-for-byte what fastavro writes
(tests/unit/events/test_codec_compiled.py proves it over every event type); anything these
generators do not support raises `Unsupported`, and the codec then keeps using fastavro.

Generated code reads `b` (bytes) at position `p`, and writes into `out` (a bytearray).
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
Encoder = Callable[[Any, bytearray], None]
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
def _emit_varint(src: _Source, d: int, value: str, bounds: tuple[int, int], what: str) -> None:
    src.emit(d, f"if not {bounds[0]} <= {value} <= {bounds[1]}: raise ValueError('{what}: ' + repr({value}) + ' out of range')")
    src.emit(d, f"{value} = ({value} << 1) ^ ({value} >> 63)")
    src.emit(d, f"while {value} >= 0x80:")
    src.emit(d + 1, f"out.append(({value} & 0x7F) | 0x80)")
    src.emit(d + 1, f"{value} >>= 7")
    src.emit(d, f"out.append({value})")


def _emit_encode(src: _Source, d: int, schema: Any, expr: str, names: dict[str, Any], what: str) -> None:
    schema = _resolve(schema, names)
    kind = _kind(schema)
    if kind == "null":
        return
    v = src.var("v")
    src.emit(d, f"{v} = {expr}")
    if kind in ("int", "long"):
        src.emit(d, f"if {v}.__class__ is not int: raise TypeError('{what}: expected int, got ' + type({v}).__name__)")
        _emit_varint(src, d, v, INT_RANGE if kind == "int" else LONG_RANGE, what)
    elif kind == "boolean":
        src.emit(d, f"if {v}.__class__ is not bool: raise TypeError('{what}: expected bool, got ' + type({v}).__name__)")
        src.emit(d, f"out.append(1 if {v} else 0)")
    elif kind in ("string", "bytes"):
        py = "str" if kind == "string" else "bytes"
        src.emit(d, f"if {v}.__class__ is not {py}: raise TypeError('{what}: expected {py}, got ' + type({v}).__name__)")
        if kind == "string":
            src.emit(d, f"{v} = {v}.encode()")
        n = src.var("n")
        src.emit(d, f"{n} = len({v})")
        _emit_varint(src, d, n, LONG_RANGE, what)
        src.emit(d, f"out += {v}")
    elif kind in ("float", "double"):
        src.emit(d, f"out += _pack_{kind}({v})")
    elif kind == "optional":
        src.emit(d, f"if {v} is None:")
        src.emit(d + 1, "out.append(0)")
        src.emit(d, "else:")
        src.emit(d + 1, "out.append(2)")  # union branch 1, zig-zag encoded
        _emit_encode(src, d + 1, schema[1], v, names, what)
    elif kind == "record":
        _record_class(schema)
        for field in schema["fields"]:
            _emit_encode(src, d, field["type"], f"{v}.{field['name']}", names, f"{what}.{field['name']}")
    elif kind in ("array", "map"):
        n = src.var("n")
        src.emit(d, f"{n} = len({v})")
        src.emit(d, f"if {n}:")
        _emit_varint(src, d + 1, n, LONG_RANGE, what)
        item = src.var("i")
        if kind == "array":
            src.emit(d + 1, f"for {item} in {v}:")
            _emit_encode(src, d + 2, schema["items"], item, names, f"{what}[]")
        else:
            key = src.var("k")
            src.emit(d + 1, f"for {key}, {item} in {v}.items():")
            _emit_encode(src, d + 2, "string", key, names, f"{what} key")
            _emit_encode(src, d + 2, schema["values"], item, names, f"{what}{{}}")
        src.emit(d, "out.append(0)")
    else:
        raise Unsupported(f"Avro type {kind}")


# --- decoding -------------------------------------------------------------------------------
def _emit_read_long(src: _Source, d: int, target: str) -> None:
    c, n, s = src.var("c"), src.var("n"), src.var("s")
    src.emit(d, f"{c} = b[p]")
    src.emit(d, "p += 1")
    src.emit(d, f"if {c} < 0x80:")
    src.emit(d + 1, f"{target} = ({c} >> 1) ^ -({c} & 1)")
    src.emit(d, "else:")
    src.emit(d + 1, f"{n} = {c} & 0x7F")
    src.emit(d + 1, f"{s} = 7")
    src.emit(d + 1, f"while {c} & 0x80:")  # garbage ends at the end of the buffer (IndexError)
    src.emit(d + 2, f"{c} = b[p]")
    src.emit(d + 2, "p += 1")
    src.emit(d + 2, f"{n} |= ({c} & 0x7F) << {s}")
    src.emit(d + 2, f"{s} += 7")
    src.emit(d + 1, f"{target} = ({n} >> 1) ^ -({n} & 1)")


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
        src.emit(d, f"if {n} < 0 or p + {n} > end: raise ValueError('length ' + str({n}) + ' runs past the end')")
        src.emit(d, f"{target} = b[p:p + {n}]" + (".decode()" if kind == "string" else ""))
        src.emit(d, f"p += {n}")
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
        if _settable_slots(cls_name):
            # Frozen dataclasses set each field through object.__setattr__ anyway; doing it with
            # the slot descriptors directly skips the keyword-argument call (2x faster to build).
            src.emit(d, f"{target} = _new({cls_name})")
            for name, value in fields:
                src.emit(d, f"_set_{cls_name}_{name}({target}, {value})")
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


def _settable_slots(cls_name: str) -> bool:
    """Whether objects of this class may be built field by field without __init__: a slotted
    dataclass whose __init__ only stores the fields (no __post_init__ to run)."""
    cls = getattr(catalog, cls_name)
    return "__slots__" in vars(cls) and not hasattr(cls, "__post_init__")


def _catalog_globals() -> dict[str, Any]:
    names: dict[str, Any] = {"_new": object.__new__}
    for name in dir(catalog):
        cls = getattr(catalog, name)
        if isinstance(cls, type) and dataclasses.is_dataclass(cls):
            names[name] = cls
            if _settable_slots(name):
                for field in dataclasses.fields(cls):
                    names[f"_set_{name}_{field.name}"] = vars(cls)[field.name].__set__
    return names


_GLOBALS = {"_pack_float": struct.Struct("<f").pack, "_pack_double": struct.Struct("<d").pack,
            "_unpack_float": struct.Struct("<f").unpack_from, "_unpack_double": struct.Struct("<d").unpack_from,
            **_catalog_globals()}


def encoder_source(schema: dict[str, Any]) -> str:
    src = _Source()
    src.emit(0, "def encode(e, out):")
    _emit_encode(src, 1, schema, "e", {}, schema["name"])
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
    """`encode(event, out)` appends the Avro binary body of `event` (a catalog object) to `out`."""
    return _compile(encoder_source(schema), schema["name"])  # type: ignore[no-any-return]


def compile_decoder(schema: dict[str, Any]) -> Decoder:
    """`decode(data, offset)` reads the body at `offset` (to the end) into a catalog object."""
    return _compile(decoder_source(schema), schema["name"])  # type: ignore[no-any-return]
