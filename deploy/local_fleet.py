"""The local fleet's conventions that `squall up`/`squall status` and the local provider
(services/providers/local.py) share: the `--zones` syntax, and where an agent's command is kept
(<home>/instances/<name>.cmd, its metrics port among its flags).

They live here, below the services, because `deploy` may not import `services` (the `squall` CLI
imports `deploy`); the local provider imports them from here.
"""

from __future__ import annotations

import json
from pathlib import Path


class ZonesError(ValueError):
    """A malformed --zones; the message names the zone and what to write instead."""


def metrics_url(home: Path, name: str) -> str | None:
    """The Prometheus endpoint of a local agent, from the command it runs with (None if unknown):
    on loopback, or on the address its --metrics-host names (an agent on a host of its own)."""
    try:
        command = json.loads((home / "instances" / f"{name}.cmd").read_text())
        port = int(command[command.index("--metrics-port") + 1])
        host = command[command.index("--metrics-host") + 1] if "--metrics-host" in command else "127.0.0.1"
        return f"http://{host}:{port}/metrics"
    except (OSError, ValueError, IndexError, TypeError):
        return None


def parse_zones(text: str) -> dict[str, int | None]:
    """`local-a,local-b:2` -> {"local-a": None, "local-b": 2}: zone names, each with an optional capacity."""
    zones: dict[str, int | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, capacity = item.partition(":")
        name = name.strip()
        if not name or name in zones:
            raise ZonesError(f"--zones {text!r}: zone names must be non-empty and distinct (e.g. local-a,local-b:2)")
        if capacity.strip() and not capacity.strip().isdigit():
            raise ZonesError(f"--zones {text!r}: the capacity of {name} must be a whole number, not {capacity!r}")
        zones[name] = int(capacity) if capacity.strip() else None
    return zones
