"""The local provider with a stand-in agent process (a sleeping python that takes the worker's flags)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from services.config import ServiceConfig
from services.providers.base import InstanceSpec
from services.providers.local import LocalProvider

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")
GIB = 1024**3


def spec(name: str) -> InstanceSpec:
    return InstanceSpec(name=name, pool="standard", machine_type="local-2", cores_mcpu=2000, memory_bytes=8 * GIB,
                        storage_gib=10, preemptible=True, region="local")


def start_by_hand(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command)


async def test_create_list_delete_and_find_a_restarted_agent(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.",
                           storage_endpoint="http://127.0.0.1:7", system_bucket="sys-b")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    created = await provider.create(spec("w1"))
    assert (tmp_path / "instances" / "w1.pid").read_text().strip() == created.provider_id
    assert provider.command_for(spec("w1"))[len(SLEEPER):] == [
        "--instance-name", "w1", "--cores", "2", "--memory-gib", "8", "--storage-gib", "10", "--pool", "standard",
        "--region", "local", "--bootstrap", "127.0.0.1:9", "--topic-prefix", "p.", "--home", str(tmp_path),
        "--system-bucket", "sys-b", "--storage-endpoint", "http://127.0.0.1:7", "--preemptible"]
    assert [i.name for i in await provider.list()] == ["w1"]
    assert (await provider.create(spec("w1"))).provider_id == created.provider_id  # idempotent by name

    # someone restarts the agent by hand: a new pid, same instance name
    os.kill(int(created.provider_id), signal.SIGKILL)
    provider._children["w1"].wait()
    restarted = start_by_hand(provider.command_for(spec("w1")))
    try:
        assert [(i.name, i.provider_id) for i in await provider.list()] == [("w1", str(restarted.pid))]
        await provider.delete("w1")
        assert restarted.wait(timeout=10) == -signal.SIGTERM
        assert await provider.list() == [] and not (tmp_path / "instances" / "w1.pid").exists()
        await provider.delete("w1")  # already gone: not an error
    finally:
        if restarted.poll() is None:
            restarted.kill()
