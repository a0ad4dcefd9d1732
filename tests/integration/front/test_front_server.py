"""`python -m services.front` as the local stack runs it: real Kafka, real PostgreSQL, a real port."""

from __future__ import annotations

import asyncio
import socket
import sys
import time

import httpx
import psycopg
import pytest

from events.codec import Codec
from events.kafka_log import KafkaEventLog
from events.log import partition_for
from services.front.users import create_user

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_service_migrates_serves_and_appends(fresh_db, kafka_bootstrap, topics, tmp_path):
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.front", "--host", "127.0.0.1", "--port", str(port),
        "--bootstrap", kafka_bootstrap, "--database-url", fresh_db, "--topic-prefix", topics.prefix,
        "--home", str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await http.get("/healthcheck")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError("front did not start (see the captured output)")
                await asyncio.sleep(0.2)
            # it applied the front's migrations at start-up: a user can be created now
            async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
                token = (await create_user(conn, "erin")).token
            headers = {"Authorization": f"Bearer {token}"}
            r = await http.post("/api/v1alpha/batches/create-fast", headers=headers, json={
                "batch": {"billing_project": "erin", "token": "t", "n_jobs": 1},
                "bunch": [{"job_id": 1, "process": {"type": "docker", "image": "busybox", "command": ["true"]}}]})
            assert r.status_code == 200, r.text
            batch_id = r.json()["id"]
            assert (await http.get(f"/api/v1alpha/batches/{batch_id}", headers=headers)).json()["n_jobs"] == 1
            assert (await http.get("/metrics")).status_code == 200
            assert "/api/v1alpha/batches/create-fast" in (await http.get("/openapi.json")).json()["paths"]
    finally:
        if proc.returncode is None:
            proc.terminate()
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
        print(output[-3000:])

    log = await KafkaEventLog.connect(kafka_bootstrap, client_id="test-front-server")
    try:
        partition = partition_for(str(batch_id).encode(), await log.partitions(topics.batch))
        records = await log.read(topics.batch, partition, 0, timeout_ms=2000)
        kinds = [type(Codec().decode(r.value)).__name__ for r in records]
        assert kinds == ["BatchCreated", "BatchUpdateCreated", "JobCreated", "BatchUpdateCommitted"]
    finally:
        await log.close()
