"""One difference `squall replay --verify` reports: a row only on one side, or columns that differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    kind: str  # "only live" | "only replay" | "differs" | front_check.MISSING
    columns: tuple[tuple[str, Any, Any], ...] = ()  # (column, live, replay) for "differs"

    def __str__(self) -> str:
        where = f"{self.table} {self.key}"
        if self.kind != "differs":
            return f"{where}: {self.kind}"
        return f"{where}: " + "; ".join(f"{c} live={a!r} replay={b!r}" for c, a, b in self.columns)
