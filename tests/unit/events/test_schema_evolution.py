"""Schema evolution is proven: every version of every event is compatible with all earlier ones,
both ways, and the checker really catches an incompatible change."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from events.codec import Codec
from events.schema_compat import (
    decode_problems,
    registry_problems,
    resolution_problems,
    transitive_problems,
)
from events.schema_registry import SCHEMAS_DIR, load_registry
from tests.unit.events.avro_samples import example_event

EVENT = "BatchCreated"


def test_every_event_is_transitively_compatible_across_its_versions() -> None:
    problems = {name: p for name, p in registry_problems().items() if p}
    assert problems == {}


def _v1() -> dict[str, Any]:
    return copy.deepcopy(load_registry().versions[EVENT][0].raw)


def _latest() -> dict[str, Any]:
    return copy.deepcopy(load_registry().versions[EVENT][-1].raw)


def _with_v2(tmp_path: Path, v2: dict[str, Any]) -> Path:
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, root)
    (root / EVENT / f"v{len(load_registry().versions[EVENT]) + 1}.avsc").write_text(json.dumps(v2))
    return root


def test_a_required_new_field_is_caught(tmp_path: Path) -> None:
    v2 = _v1()
    v2["fields"].append({"name": "priority", "type": "int"})  # no default: old data cannot fill it
    problems = registry_problems(_with_v2(tmp_path, v2))[EVENT]
    assert any("priority" in p and "backward" in p for p in problems)
    assert decode_problems(_v1(), v2)  # fastavro agrees: old bytes do not read with v2


def test_a_changed_field_type_is_caught_both_ways(tmp_path: Path) -> None:
    v2 = _v1()
    for field in v2["fields"]:
        if field["name"] == "user":
            field["type"] = "long"
    problems = registry_problems(_with_v2(tmp_path, v2))[EVENT]
    assert any("/user" in p and "backward" in p for p in problems)
    assert any("/user" in p and "forward" in p for p in problems)


def test_a_removed_field_without_default_is_caught_forward() -> None:
    v1 = _v1()
    v2 = _v1()
    v2["fields"] = [f for f in v2["fields"] if f["name"] != "billing_project"]
    problems = transitive_problems([v1, v2])
    assert problems and all("forward" in p for p in problems)  # v2 reads v1; v1 cannot read v2


def test_a_new_optional_field_is_compatible_and_old_bytes_decode(tmp_path: Path) -> None:
    v2 = _latest()  # the next version adds to the current one
    v2["fields"].append({"name": "priority", "type": ["null", "int"], "default": None})
    root = _with_v2(tmp_path, v2)
    assert registry_problems(root)[EVENT] == []

    old_bytes = Codec().encode(example_event(EVENT))
    new_codec = Codec(load_registry(root))
    assert new_codec.decode(old_bytes) == example_event(EVENT)
    new_bytes = new_codec.encode(example_event(EVENT))
    assert new_bytes[2:10] != old_bytes[2:10]  # written with v2's fingerprint
    assert new_codec.decode(new_bytes) == example_event(EVENT)


@pytest.mark.parametrize(("writer", "reader", "ok"), [
    ("int", "long", True), ("int", "double", True), ("long", "int", False), ("string", "bytes", True),
    (["null", "string"], ["null", "string", "int"], True), (["null", "string", "int"], ["null", "string"], False),
    ("string", ["null", "string"], True), (["null", "string"], "string", False),
    ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, {"type": "enum", "name": "E", "symbols": ["A"]}, False),
    ({"type": "enum", "name": "E", "symbols": ["A", "B"]},
     {"type": "enum", "name": "E", "symbols": ["A"], "default": "A"}, True),
    ({"type": "array", "items": "int"}, {"type": "array", "items": "long"}, True),
    ({"type": "map", "values": "long"}, {"type": "map", "values": "int"}, False),
    ({"type": "fixed", "name": "F", "size": 4}, {"type": "fixed", "name": "F", "size": 8}, False),
])
def test_avro_resolution_rules(writer: Any, reader: Any, ok: bool) -> None:
    def wrap(t: Any) -> dict[str, Any]:
        return {"type": "record", "name": "R", "fields": [{"name": "x", "type": t}]}

    assert (resolution_problems(wrap(writer), wrap(reader)) == []) is ok
