"""Generate `events/catalog.py` (frozen dataclasses) and `events/_avro_codec.pyx` (the Cython
decoders, see events/codec_cython.py) from the current schemas in `schemas/`.

The `.avsc` files are the single source of truth; `catalog.py` is derived and checked in so that
mypy and readers can see the types. `tests/unit/test_catalog.py` fails when it is stale.
Run: `python -m events.codegen`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from events.schema_registry import Registry, load_registry

CATALOG_PATH = Path(__file__).resolve().parent / "catalog.py"
_PRIMITIVES = {"string": "str", "long": "int", "int": "int", "boolean": "bool", "double": "float", "float": "float"}
_TOPIC_KEYS = {"batch": "batch_id", "instance": "instance_name", "heartbeat": "instance_name",
               "assignment": "instance_name", "control": None}


class _Gen:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}  # nested record name -> definition
        self.order: list[str] = []

    def py_type(self, t: Any) -> str:
        if isinstance(t, str):
            if t in _PRIMITIVES:
                return _PRIMITIVES[t]
            return t  # a named record defined earlier in the same schema
        if isinstance(t, list):
            others = [x for x in t if x != "null"]
            if len(t) != 2 or len(others) != 1:
                raise ValueError(f"only [null, T] unions are supported, got {t}")
            return f"{self.py_type(others[0])} | None"
        kind = t["type"]
        if kind == "array":
            return f"tuple[{self.py_type(t['items'])}, ...]"
        if kind == "map":
            return f"dict[str, {self.py_type(t['values'])}]"
        if kind == "record":
            self.add_record(t)
            return str(t["name"])
        return self.py_type(kind)

    def add_record(self, rec: dict[str, Any]) -> None:
        name = rec["name"]
        if name in self.records:
            if _strip(self.records[name]) != _strip(rec):
                raise ValueError(f"record {name} is defined differently in two schemas")
            return
        self.records[name] = rec
        for f in rec["fields"]:
            self.py_type(f["type"])
        self.order.append(name)

    # -- conversion expressions ------------------------------------------------------------
    def to_avro(self, t: Any, expr: str) -> str:
        if isinstance(t, str):
            return f"{expr}.to_avro()" if t in self.records else expr
        if isinstance(t, list):
            inner = next(x for x in t if x != "null")
            conv = self.to_avro(inner, "v")
            return expr if conv == "v" else f"(None if {expr} is None else {self.to_avro(inner, expr)})"
        kind = t["type"]
        if kind == "array":
            conv = self.to_avro(t["items"], "v")
            return f"list({expr})" if conv == "v" else f"[{conv} for v in {expr}]"
        if kind == "map":
            return expr
        if kind == "record":
            return f"{expr}.to_avro()"
        return self.to_avro(kind, expr)

    def from_avro(self, t: Any, expr: str) -> str:
        if isinstance(t, str):
            return f"{t}.from_avro({expr})" if t in self.records else expr
        if isinstance(t, list):
            inner = next(x for x in t if x != "null")
            conv = self.from_avro(inner, "v")
            return expr if conv == "v" else f"(None if {expr} is None else {self.from_avro(inner, expr)})"
        kind = t["type"]
        if kind == "array":
            conv = self.from_avro(t["items"], "v")
            return f"tuple({expr})" if conv == "v" else f"tuple({conv} for v in {expr})"
        if kind == "map":
            return f"dict({expr})"
        if kind == "record":
            return f"{t['name']}.from_avro({expr})"
        return self.from_avro(kind, expr)


def _strip(rec: Any) -> Any:
    """A record definition with nested definitions replaced by their names, for comparison."""
    if isinstance(rec, dict):
        return {k: (v["name"] if isinstance(v, dict) and v.get("type") == "record" and k != "fields" else _strip(v))
                for k, v in rec.items() if k != "doc"}
    if isinstance(rec, list):
        return [_strip(x) for x in rec]
    return rec


def _default(field: dict[str, Any]) -> str:
    # "squall.producer_must_set": the Avro default only fills the field in data older than it; code
    # that makes the event must say (a forgotten value would silently mean what old data means)
    if "default" not in field or field.get("squall.producer_must_set"):
        return ""
    d = field["default"]
    if d is None:
        return " = None"
    if isinstance(d, bool | int | float | str):
        return f" = {d!r}"
    raise ValueError(f"unsupported default {d!r} in field {field['name']}")


def _class_source(gen: _Gen, rec: dict[str, Any], event: bool, topic: str | None = None) -> str:
    name = rec["name"]
    doc = rec.get("doc", name).replace('"""', "'")
    lines = ["@dataclass(frozen=True, slots=True, kw_only=True)", f"class {name}:", f'    """{doc}"""', ""]
    if event:
        key = rec.get("squall.key", _TOPIC_KEYS[topic]) if topic else None  # a schema may name its own key
        lines += [f'    SCHEMA_NAME: ClassVar[str] = "{name}"', f'    TOPIC: ClassVar[str] = "{topic}"',
                  f"    KEY_FIELD: ClassVar[str | None] = {key!r}", ""]
    for f in rec["fields"]:
        lines.append(f"    {f['name']}: {gen.py_type(f['type'])}{_default(f)}")
    lines += ["", "    def to_avro(self) -> dict[str, Any]:", "        return {"]
    for f in rec["fields"]:
        lines.append(f"            {f['name']!r}: {gen.to_avro(f['type'], 'self.' + f['name'])},")
    lines += ["        }", "", "    @classmethod", f"    def from_avro(cls, d: dict[str, Any]) -> {name}:", "        return cls("]
    for f in rec["fields"]:
        lines.append(f"            {f['name']}={gen.from_avro(f['type'], 'd[' + repr(f['name']) + ']')},")
    lines += ["        )", ""]
    return "\n".join(lines)


def generate(registry: Registry | None = None) -> str:
    registry = registry or load_registry()
    gen = _Gen()
    events = [registry.current(n).raw for n in sorted(registry.versions)]
    for ev in events:
        for f in ev["fields"]:
            gen.py_type(f["type"])
    out = [
        '"""Event types, generated from schemas/ by `python -m events.codegen`. Do not edit by hand."""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "from typing import Any, ClassVar",
        "",
        "",
    ]
    for name in gen.order:
        out.append(_class_source(gen, gen.records[name], event=False))
        out.append("")
    for ev in events:
        out.append(_class_source(gen, ev, event=True, topic=ev["squall.topic"]))
        out.append("")
    names = ", ".join(ev["name"] for ev in events)
    out.append(f"Event = {' | '.join(ev['name'] for ev in events)}")
    out.append("")
    out.append(f"EVENT_TYPES: dict[str, type[Event]] = {{c.SCHEMA_NAME: c for c in ({names})}}")
    out.append("")
    return "\n".join(out)


def main() -> int:
    CATALOG_PATH.write_text(generate())
    print(f"wrote {CATALOG_PATH}")
    # after the catalog: the decoders are generated against its classes
    from events import catalog, codec_compiled, codec_cython

    importlib.reload(catalog)
    importlib.reload(codec_compiled)
    importlib.reload(codec_cython)
    codec_cython.PYX_PATH.write_text(codec_cython.module_source())
    print(f"wrote {codec_cython.PYX_PATH} (built into events._avro_codec by `pip install -e .`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
