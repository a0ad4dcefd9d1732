"""Asking a worker agent for the live log of an attempt it runs (worker/agent_http.py).

The request carries the instance's secret, read from squall's bucket (instances/<name>/agent-secret)
and cached; a 401 means the agent restarted with a new secret, so it is read again once. Any
failure (agent gone, slow, refusing) answers None and the caller falls back to the store: the live
tail is an improvement, never a dependency. Each call is bounded by `timeout_s`.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx

from events.objectstore import ObjectStore, ObjectStoreError
from events.objectstore.joblogs import LogRead
from events.objectstore.layout import STEPS, agent_secret_key

log = logging.getLogger("squall.jobdata")


class AgentLogs:
    def __init__(self, store: ObjectStore, bucket: str, timeout_s: float = 2.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.store = store
        self.bucket = bucket
        self.timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._secrets: dict[str, str] = {}

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport)
        return self._client

    async def _secret(self, instance: str, refresh: bool) -> str | None:
        if refresh or instance not in self._secrets:
            try:
                self._secrets[instance] = (await self.store.get(self.bucket, agent_secret_key(instance))).decode()
            except (ObjectStoreError, ValueError) as exc:
                log.info("no agent secret for %s: %s", instance, exc)
                return None
        return self._secrets[instance]

    async def read(self, instance: str, agent_url: str, batch_id: int, job_id: int, attempt_id: str, step: str,
                   tail_bytes: int | None = None) -> LogRead | None:
        """The step's log as the agent has it now (its last tail_bytes), or None."""
        if step not in STEPS:
            return None
        url = (f"{agent_url.rstrip('/')}/api/v1alpha/attempts/{int(batch_id)}/{int(job_id)}/"
               f"{quote(attempt_id, safe='')}/log/{step}")
        params = {} if tail_bytes is None else {"tail": str(tail_bytes)}
        for refresh in (False, True):
            secret = await self._secret(instance, refresh)
            if secret is None:
                return None
            try:
                resp = await self._http().get(url, params=params, headers={"Authorization": f"Bearer {secret}"})
            except httpx.HTTPError as exc:
                log.info("agent %s did not answer for %s: %s", instance, url, exc)
                return None
            if resp.status_code == 401 and not refresh:
                continue  # a restarted agent: read its new secret once
            if resp.status_code != 200:
                return None
            try:
                size = int(resp.headers.get("X-Squall-Log-Size", len(resp.content)))
            except ValueError:
                size = len(resp.content)
            return LogRead(resp.content, size, complete=False)
        return None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
