"""The schemas in `schemas/`: every released version of every event, and their fingerprints.

`schemas/<EventName>/v<N>.avsc` — the highest N is the current (reader) schema; every version is a
possible writer schema, found by its CRC-64-AVRO fingerprint when a message is decoded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
_VERSION_FILE = re.compile(r"^v(\d+)\.avsc$")


@dataclass(frozen=True)
class SchemaVersion:
    event_name: str
    version: int
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian CRC-64-AVRO of the canonical form


def _load_version(event_name: str, path: Path, version: int) -> SchemaVersion:
    raw = json.loads(path.read_text())
    if raw.get("name") != event_name:
        raise ValueError(f"{path}: schema name {raw.get('name')!r} must equal its folder name {event_name!r}")
    parsed = parse_schema(raw, named_schemas={})
    # fastavro's hex is already the little-endian byte order single-object encoding writes
    # ("null" -> 8a8f25cce724dd63, the spec's 0x63dd24e7cc258f8a)
    fp = bytes.fromhex(fingerprint(to_parsing_canonical_form(raw), "CRC-64-AVRO"))
    return SchemaVersion(event_name, version, raw, parsed, fp)


@dataclass(frozen=True)
class Registry:
    versions: dict[str, list[SchemaVersion]]  # event name -> versions, oldest first

    def current(self, event_name: str) -> SchemaVersion:
        return self.versions[event_name][-1]

    def by_fingerprint(self) -> dict[bytes, SchemaVersion]:
        return {v.fingerprint: v for vs in self.versions.values() for v in vs}


@cache
def load_registry(root: Path = SCHEMAS_DIR) -> Registry:
    versions: dict[str, list[SchemaVersion]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found = []
        for path in folder.iterdir():
            m = _VERSION_FILE.match(path.name)
            if m:
                found.append(_load_version(folder.name, path, int(m.group(1))))
        if not found:
            raise ValueError(f"{folder}: no v<N>.avsc schema files")
        found.sort(key=lambda v: v.version)
        if [v.version for v in found] != list(range(1, len(found) + 1)):
            raise ValueError(f"{folder}: versions must be v1..vN without gaps")
        versions[folder.name] = found
    return Registry(versions)
