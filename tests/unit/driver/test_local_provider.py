"""The local provider with a stand-in agent process (a sleeping python that takes the worker's flags)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.local_fleet import metrics_url
from events.process.config import ServiceConfig
from services.providers.base import InstanceSpec, ProviderError
from services.providers.local import LocalProvider, preempt

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")
GIB = 1024**3


def spec(name: str) -> InstanceSpec:
    return InstanceSpec(name=name, pool="standard", machine_type="local-2", cores_mcpu=2000, memory_bytes=8 * GIB,
                        storage_gib=10, preemptible=True, region="local")


def cmdline(pid: int) -> list[str]:
    """The process's arguments, once it has them: a child just forked reads as empty until it execs."""
    deadline = time.monotonic() + 10
    while True:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0")
        if raw or time.monotonic() > deadline:
            return [a.decode() for a in raw.split(b"\0")]
        time.sleep(0.01)



def start_by_hand(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command)


async def test_create_list_delete_and_find_a_restarted_agent(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.",
                           storage_endpoint="http://127.0.0.1:7", system_bucket="sys-b")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    created = await provider.create(spec("w1"))
    assert (tmp_path / "instances" / "w1.pid").read_text().strip() == created.provider_id
    command = provider.command_for(spec("w1"))
    assert command[-2] == "--metrics-port" and 1024 <= int(command[-1]) < 65536  # its own Prometheus port
    assert command[len(SLEEPER):-2] == [
        "--instance-name", "w1", "--cores", "2", "--memory-gib", "8", "--storage-gib", "10", "--pool", "standard",
        "--region", "local", "--bootstrap", "127.0.0.1:9", "--topic-prefix", "p.", "--home", str(tmp_path),
        "--system-bucket", "sys-b", "--storage-endpoint", "http://127.0.0.1:7", "--preemptible"]
    assert [i.name for i in await provider.list()] == ["w1"]

    # someone restarts the agent by hand: a new pid, same instance name
    os.kill(int(created.provider_id), signal.SIGKILL)
    provider._children["w1"].wait()
    restarted = start_by_hand(provider.command_for(spec("w1")))
    try:
        assert [(i.name, i.provider_id) for i in await provider.list()] == [("w1", str(restarted.pid))]
        await provider.delete("w1")
        assert restarted.wait(timeout=10) == -signal.SIGTERM
        assert await provider.list() == [] and not (tmp_path / "instances" / "w1.pid").exists()
    finally:
        if restarted.poll() is None:
            restarted.kill()


async def test_local_zones_hold_their_capacity_and_refuse_beyond_it(tmp_path) -> None:
    import asyncio
    from dataclasses import replace

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


async def test_an_agent_that_dies_is_restarted_with_the_same_command_and_counted(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    first = await provider.create(spec("w1"))
    cmdline_of_create = cmdline(int(first.provider_id))
    assert await provider.heal() == []  # alive: nothing to do
    os.kill(int(first.provider_id), signal.SIGKILL)
    provider._children["w1"].wait()
    assert await provider.heal() == ["w1"]
    [again] = await provider.list()
    assert again.name == "w1" and again.provider_id != first.provider_id and again.status == "running"
    assert cmdline(int(again.provider_id)) == cmdline_of_create  # same flags, same metrics port
    assert metrics_url(tmp_path, "w1") == f"http://127.0.0.1:{cmdline_of_create[-1]}/metrics"
    assert (tmp_path / "instances" / "w1.restarts").read_text() == '{"restarts": 1}'
    await provider.delete("w1")
    assert await provider.heal() == [] and await provider.list() == []
    assert not (tmp_path / "instances" / "w1.restarts").exists()


async def test_a_deleted_agent_is_not_brought_back(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    await provider.create(spec("w1"))
    await provider.delete("w1")
    assert await provider.heal() == [] and await provider.list() == []


async def test_an_agent_that_drained_and_exited_by_itself_stays_down(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, (sys.executable, "-c", "import sys; sys.exit(0)"), stop_timeout_s=5)
    await provider.create(spec("w1"))
    provider._children["w1"].wait()
    assert await provider.heal() == []
    assert await provider.list() == []  # gone for good: the autoscaler reconciles it


async def test_an_agent_that_keeps_dying_is_given_up_so_its_instance_is_deactivated(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, (sys.executable, "-c", "import sys; sys.exit(3)"), stop_timeout_s=5,
                             restart_delays_s=(0.0, 0.0, 0.0))
    await provider.create(spec("w1"))
    provider._children["w1"].wait()
    # between its death and its restart it is not reported gone (that would deactivate the instance)
    assert [(i.name, i.status) for i in await provider.list()] == [("w1", "restarting")]
    restarts = 0
    for _ in range(200):
        provider._children["w1"].wait()
        healed = await provider.heal()
        restarts += len(healed)
        if not healed and not (tmp_path / "instances" / "w1.cmd").exists():
            break
    assert restarts == 3
    assert await provider.list() == []


async def test_a_preempted_instance_dies_whole_and_the_provider_says_it_was_preempted(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    first = await provider.create(spec("w1"))
    assert await provider.preempted() == []
    preempt(tmp_path, "w1")
    assert provider._children["w1"].wait(timeout=10) == -signal.SIGKILL
    assert await provider.preempted() == ["w1"]
    assert [(i.name, i.status) for i in await provider.list()] == [("w1", "preempted")]
    assert await provider.heal() == [], "a preempted machine is not brought back"
    await provider.delete("w1")
    assert await provider.preempted() == [] and await provider.list() == []
    assert first.provider_id


async def test_only_a_live_preemptible_instance_can_be_preempted(tmp_path) -> None:
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5)
    steady = InstanceSpec(name="np1", pool="standard-np", machine_type="local-2", cores_mcpu=2000,
                          memory_bytes=8 * GIB, storage_gib=10, preemptible=False, region="local")
    await provider.create(steady)
    try:
        with pytest.raises(ProviderError, match="np1 is not preemptible"):
            preempt(tmp_path, "np1")
        with pytest.raises(ProviderError, match="no live local instance 'w9'"):
            preempt(tmp_path, "w9")
        assert await provider.preempted() == []
    finally:
        await provider.delete("np1")


async def test_an_instance_whose_agent_is_restarting_keeps_its_zone_and_its_place_in_it(tmp_path) -> None:
    from dataclasses import replace

    from services.providers.base import ZoneExhausted

    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5, zones={"local-b": 1},
                             restart_delays_s=(60.0,))  # it stays dead for the test
    try:
        first = await provider.create(replace(spec("b1"), zone="local-b"))
        os.kill(int(first.provider_id), signal.SIGKILL)
        provider._children["b1"].wait()
        assert await provider.heal() == []  # its restart waits out the delay
        assert [(i.name, i.status, i.zone) for i in await provider.list()] == [("b1", "restarting", "local-b")]
        with pytest.raises(ZoneExhausted):
            await provider.create(replace(spec("b2"), zone="local-b"))
        await provider.delete("b1")
        assert (await provider.create(replace(spec("b2"), zone="local-b"))).zone == "local-b"
    finally:
        for instance in await provider.list():
            await provider.delete(instance.name)
