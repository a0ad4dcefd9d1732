"""Values for Avro schemas, derived from the schemas themselves (so a new event is covered the day
its .avsc lands): hypothesis strategies for property tests and one deterministic example per event
for benchmarks. Only the Avro types our schemas use are supported; anything else fails loudly.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from events.catalog import EVENT_TYPES, Event
from events.schema_registry import load_registry

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def _named(schema: Any, names: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in names:
        return names[schema]
    return schema


def strategy(schema: Any, names: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """A strategy producing Avro datums (dicts, lists, primitives) valid for `schema`."""
    names = {} if names is None else names
    schema = _named(schema, names)
    if isinstance(schema, list):
        return st.one_of(*(strategy(branch, names) for branch in schema))
    if isinstance(schema, str):
        return _primitive(schema)
    kind = schema["type"]
    if kind == "record":
        names[schema["name"]] = schema
        return st.fixed_dictionaries({f["name"]: strategy(f["type"], names) for f in schema["fields"]})
    if kind == "array":
        return st.lists(strategy(schema["items"], names), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), strategy(schema["values"], names), max_size=4)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    return _primitive(kind)


def _primitive(kind: str) -> st.SearchStrategy[Any]:
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(*INT32),
        "long": st.integers(*INT64),
        "float": st.floats(width=32, allow_nan=False),  # NaN != NaN would fail equality, not the codec
        "double": st.floats(allow_nan=False),
        "string": st.text(max_size=20),
        "bytes": st.binary(max_size=20),
    }
    if kind not in strategies:
        raise ValueError(f"no sample strategy for Avro type {kind!r}: extend tests/unit/events/avro_samples.py")
    return strategies[kind]


def event_strategy(event_name: str) -> st.SearchStrategy[Event]:
    """Events of one type, current schema version."""
    schema = load_registry().current(event_name).raw
    return strategy(schema).map(EVENT_TYPES[event_name].from_avro)


def example(schema: Any, names: dict[str, Any] | None = None, seed: int = 1) -> Any:
    """One deterministic, realistic-sized datum for `schema` (every optional field filled)."""
    names = {} if names is None else names
    schema = _named(schema, names)
    if isinstance(schema, list):
        non_null = [b for b in schema if b != "null"]
        return example(non_null[0], names, seed) if non_null else None
    if isinstance(schema, str):
        kind = schema
    else:
        kind = schema["type"]
        if kind == "record":
            names[schema["name"]] = schema
            return {f["name"]: example(f["type"], names, seed + i) for i, f in enumerate(schema["fields"])}
        if kind == "array":
            return [example(schema["items"], names, seed + i) for i in range(2)]
        if kind == "map":
            return {f"key{i}": example(schema["values"], names, seed + i) for i in range(2)}
        if kind == "enum":
            return schema["symbols"][seed % len(schema["symbols"])]
    values: dict[str, Any] = {"null": None, "boolean": seed % 2 == 0, "int": 1000 + seed,
                              "long": 1_764_000_000_000 + seed, "float": 0.5 + seed, "double": 1.25 * seed,
                              "string": f"value-{seed}-abcdefgh", "bytes": bytes([seed % 256]) * 8}
    if kind not in values:
        raise ValueError(f"no example for Avro type {kind!r}: extend tests/unit/events/avro_samples.py")
    return values[kind]


def example_event(event_name: str, seed: int = 1) -> Event:
    return EVENT_TYPES[event_name].from_avro(example(load_registry().current(event_name).raw, seed=seed))
