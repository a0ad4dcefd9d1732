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
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    created = await provider.create(spec("w1"))
    assert (tmp_path / "instances" / "w1.pid").read_text().strip() == created.provider_id
    assert provider.command_for(spec("w1"))[len(SLEEPER):] == [
        "--instance-name", "w1", "--cores", "2", "--memory-gib", "8", "--storage-gib", "10", "--pool", "standard",
        "--region", "local", "--bootstrap", "127.0.0.1:9", "--topic-prefix", "p.", "--home", str(tmp_path),
        "--preemptible"]
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


async def test_local_zones_hold_their_capacity_and_refuse_beyond_it(tmp_path) -> None:
    import asyncio
    from dataclasses import replace

    import pytest

    from services.providers.base import ProviderError, ZoneExhausted

    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5, zones={"local-a": None, "local-b": 1})
    assert provider.zones_for("local") == ["local-a", "local-b"]
    try:
        # two creates at once in a zone that holds one: exactly one gets it
        results = await asyncio.gather(provider.create(replace(spec("b1"), zone="local-b")),
                                       provider.create(replace(spec("b2"), zone="local-b")), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["ProviderInstance", "ZoneExhausted"]
        assert [i.zone for i in await provider.list()] == ["local-b"]
        made = await provider.create(replace(spec("a1"), zone="local-a"))
        assert made.zone == "local-a" and (tmp_path / "instances" / "a1.zone").read_text().strip() == "local-a"
        with pytest.raises(ProviderError, match="unknown local zone 'local-c'"):
            await provider.create(replace(spec("c1"), zone="local-c"))
        taken = next(i.name for i in await provider.list() if i.zone == "local-b")
        await provider.delete(taken)  # room again
        assert (await provider.create(replace(spec("b3"), zone="local-b"))).zone == "local-b"
        with pytest.raises(ZoneExhausted, match="local zone local-b is full"):
            await provider.create(replace(spec("b4"), zone="local-b"))
    finally:
        for instance in await provider.list():
            await provider.delete(instance.name)
