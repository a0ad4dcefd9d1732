"""Where an attempt runs: its instance and that instance's agent endpoint, from the read model
(attempts.instance_name, instances.agent_url from InstanceActivated)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AttemptLocation:
    instance_name: str | None
    agent_url: str | None
    running: bool  # started (or scheduled) and not yet ended: its worker has the freshest log

    @property
    def live(self) -> bool:
        return self.running and self.instance_name is not None and self.agent_url is not None


async def locate(conn: Any, batch_id: int, job_id: int, attempt_id: str) -> AttemptLocation | None:
    cur = await conn.execute(
        "SELECT a.instance_name, a.end_time, i.agent_url, i.state FROM attempts a "
        "LEFT JOIN instances i ON i.name = a.instance_name "
        "WHERE a.batch_id = %s AND a.job_id = %s AND a.attempt_id = %s", (batch_id, job_id, attempt_id))
    row = await cur.fetchone()
    if row is None:
        return None
    instance, end_time, agent_url, instance_state = row
    running = end_time is None and instance_state in (None, "pending", "active")
    return AttemptLocation(instance, agent_url, running)
