"""JobData: an attempt's status, logs and resource usage, as the API and the web UI serve them."""

from __future__ import annotations

import json
from typing import Any

from events.objectstore import ObjectNotFound, ObjectStore
from events.objectstore import layout as keys
from events.objectstore.joblogs import LogRead, read_step_log
from services.jobdata.agents import AgentLogs
from services.jobdata.locate import AttemptLocation


class JobData:
    def __init__(self, store: ObjectStore, bucket: str, agents: AgentLogs | None = None) -> None:
        self.store = store
        self.bucket = bucket
        self.agents = agents

    async def log(self, batch_id: int, job_id: int, attempt_id: str, step: str,
                  where: AttemptLocation | None = None, tail_bytes: int | None = None) -> LogRead | None:
        """The step's log (its last tail_bytes): from the worker while the attempt runs there, else
        (or when the worker does not answer) from squall's bucket. None: the step wrote no log."""
        if where is not None and where.live and self.agents is not None:
            assert where.instance_name is not None and where.agent_url is not None
            live = await self.agents.read(where.instance_name, where.agent_url, batch_id, job_id, attempt_id, step,
                                          tail_bytes)
            if live is not None:
                return live
        return await read_step_log(self.store, self.bucket, batch_id, job_id, attempt_id, step, tail_bytes)

    async def resource_usage(self, batch_id: int, job_id: int, attempt_id: str, step: str) -> bytes | None:
        """The step's usage time series as the worker stored it (JSON), or None."""
        try:
            return await self.store.get(self.bucket, keys.resource_usage_key(batch_id, job_id, attempt_id, step))
        except ObjectNotFound:
            return None

    async def status(self, batch_id: int, job_id: int, attempt_id: str) -> Any:
        """The worker's status document of the attempt (written at each step's end), or None."""
        try:
            data = await self.store.get(self.bucket, keys.status_key(batch_id, job_id, attempt_id))
        except ObjectNotFound:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    async def close(self) -> None:
        if self.agents is not None:
            await self.agents.close()
