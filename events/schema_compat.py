"""Schema evolution checks: can data written with one schema version be read with another?

Two independent proofs, both used by tests/unit/events/test_schema_evolution.py:
- `resolution_problems(writer, reader)`: Avro's schema-resolution rules applied statically (the
  spec's "Schema Resolution" section): every problem found, with the path where it is.
- `decode_problems(writer, reader)`: fastavro writes generated data with the writer schema and
  reads it back with the reader schema; any failure is a problem.
`transitive_problems(versions)` checks every version against every earlier one, both ways (full
transitive compatibility): old readers read new data and new readers read old data.

    python -m events.schema_compat [SCHEMAS_DIR]     # exit 1 and list problems if any
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.utils import generate_many

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_NAMED = {"record", "enum", "fixed"}
# Avro's promotions: a writer's type (key) may be read as any of these reader types.
_PROMOTIONS = {"int": {"long", "float", "double"}, "long": {"float", "double"}, "float": {"double"},
               "string": {"bytes"}, "bytes": {"string"}}


def _collect_names(schema: Any, names: dict[str, Any]) -> None:
    """Index named types by short and full name, so references can be followed."""
    if isinstance(schema, list):
        for branch in schema:
            _collect_names(branch, names)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in _NAMED:
            names[schema["name"]] = schema
            if schema.get("namespace"):
                names[f"{schema['namespace']}.{schema['name']}"] = schema
            for field in schema.get("fields", []):
                _collect_names(field["type"], names)
        elif kind == "array":
            _collect_names(schema["items"], names)
        elif kind == "map":
            _collect_names(schema["values"], names)
        elif isinstance(kind, (dict, list)):
            _collect_names(kind, names)


class _Checker:
    def __init__(self, writer: Any, reader: Any) -> None:
        self.writer_names: dict[str, Any] = {}
        self.reader_names: dict[str, Any] = {}
        _collect_names(writer, self.writer_names)
        _collect_names(reader, self.reader_names)
        self.problems: list[str] = []
        self._seen: set[tuple[int, int]] = set()  # (writer, reader) named pairs already checked

    def _deref(self, schema: Any, names: dict[str, Any]) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            return names.get(schema, schema)
        if isinstance(schema, dict) and not isinstance(schema.get("type"), str):
            return schema["type"]  # {"type": {...}} wrapper
        if isinstance(schema, dict) and schema.get("type") in _PRIMITIVES and len(schema) == 1:
            return schema["type"]
        return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, str):
            return schema
        return str(schema["type"])

    def readable(self, writer: Any, reader: Any) -> bool:
        """Whether reader can read writer, without recording problems (for union branch search)."""
        probe = _Checker.__new__(_Checker)
        probe.writer_names, probe.reader_names = self.writer_names, self.reader_names
        probe.problems, probe._seen = [], set(self._seen)
        probe.check(writer, reader, "")
        return not probe.problems

    def check(self, writer: Any, reader: Any, path: str) -> None:
        writer = self._deref(writer, self.writer_names)
        reader = self._deref(reader, self.reader_names)
        wk, rk = self._kind(writer), self._kind(reader)
        if wk == "union":
            for i, branch in enumerate(writer):
                self.check(branch, reader, f"{path}<branch {i}>")
            return
        if rk == "union":
            if not any(self.readable(writer, branch) for branch in reader):
                self.problems.append(f"{path or '/'}: writer type {wk} matches no branch of the reader's union")
            return
        if wk in _PRIMITIVES or rk in _PRIMITIVES:
            if wk != rk and rk not in _PROMOTIONS.get(wk, set()):
                self.problems.append(f"{path or '/'}: writer type {wk} cannot be read as {rk}")
            return
        if wk != rk:
            self.problems.append(f"{path or '/'}: writer type {wk} cannot be read as {rk}")
            return
        if wk == "array":
            self.check(writer["items"], reader["items"], f"{path}[]")
        elif wk == "map":
            self.check(writer["values"], reader["values"], f"{path}{{}}")
        elif wk in _NAMED:
            self._check_named(writer, reader, wk, path)

    def _check_named(self, writer: dict[str, Any], reader: dict[str, Any], kind: str, path: str) -> None:
        if writer["name"] != reader["name"] and writer["name"] not in reader.get("aliases", []):
            self.problems.append(f"{path or '/'}: writer {kind} {writer['name']} is not the reader's "
                                 f"{reader['name']} (nor one of its aliases)")
            return
        pair = (id(writer), id(reader))
        if pair in self._seen:  # recursive types: checked once
            return
        self._seen.add(pair)
        if kind == "fixed" and writer["size"] != reader["size"]:
            self.problems.append(f"{path or '/'}: fixed {writer['name']} size {writer['size']} != {reader['size']}")
        elif kind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                self.problems.append(f"{path or '/'}: enum {writer['name']} symbols {missing} unknown to the "
                                     "reader, which has no default symbol")
        elif kind == "record":
            self._check_record(writer, reader, path)

    def _check_record(self, writer: dict[str, Any], reader: dict[str, Any], path: str) -> None:
        written = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            here = f"{path}/{field['name']}"
            source = written.get(field["name"]) or next(
                (written[a] for a in field.get("aliases", []) if a in written), None)
            if source is not None:
                self.check(source["type"], field["type"], here)
            elif "default" not in field:
                self.problems.append(f"{here}: field is not in the writer's {writer['name']} and has no "
                                     "default (add a default, e.g. an optional [\"null\", T] with null)")


def resolution_problems(writer: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    """Avro's resolution rules, statically: why `reader` cannot read data written with `writer`."""
    checker = _Checker(writer, reader)
    checker.check(writer, reader, "")
    return checker.problems


def decode_problems(writer: dict[str, Any], reader: dict[str, Any], samples: int = 25) -> list[str]:
    """Write generated datums with `writer`, read them with `reader` through fastavro's resolution."""
    parsed_writer = parse_schema(writer, named_schemas={})
    parsed_reader = parse_schema(reader, named_schemas={})
    for i, datum in enumerate(generate_many(parsed_writer, samples)):
        buf = BytesIO()
        schemaless_writer(buf, parsed_writer, datum)
        buf.seek(0)
        try:
            schemaless_reader(buf, parsed_writer, parsed_reader)
        except Exception as exc:  # fastavro raises assorted errors for incompatible schemas
            return [f"sample {i} written with the writer does not read with the reader: {exc!r}"]
    return []


def compatibility_problems(writer: dict[str, Any], reader: dict[str, Any]) -> list[str]:
    return resolution_problems(writer, reader) or decode_problems(writer, reader)


def transitive_problems(versions: list[dict[str, Any]]) -> list[str]:
    """Full transitive compatibility of versions v1..vN (oldest first): every later version reads
    data of every earlier one (backward) and every earlier one reads data of every later (forward)."""
    problems = []
    for new in range(1, len(versions)):
        for old in range(new):
            for what, writer, reader in (("backward", old, new), ("forward", new, old)):
                for p in compatibility_problems(versions[writer], versions[reader]):
                    problems.append(f"v{reader + 1} reading v{writer + 1} data ({what}): {p}")
    return problems


def registry_problems(root: Path | None = None) -> dict[str, list[str]]:
    """Per event in a schemas/ directory, its transitive compatibility problems (empty: none)."""
    from events.schema_registry import SCHEMAS_DIR, load_registry

    registry = load_registry(root or SCHEMAS_DIR)
    return {name: transitive_problems([v.raw for v in versions])
            for name, versions in registry.versions.items()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    found = registry_problems(Path(args[0]) if args else None)
    bad = {name: problems for name, problems in found.items() if problems}
    for name, problems in bad.items():
        for p in problems:
            print(f"{name}: {p}")
    print(f"{len(found)} events checked, {len(bad)} with incompatible versions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
