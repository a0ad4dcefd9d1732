"""One contract for every InstanceProvider: the in-memory fakes and the real adapters.

- `memory`: tests/fakes/instance_provider.MemoryProvider (the autoscaler's unit tests);
- `sim`: tests/unit/scheduler_autoscaler/driver_support.SimProvider (simulated workers on the in-memory log);
- `local`: services/providers/local.LocalProvider, spawning real processes (a stand-in agent that
  takes the worker's flags and sleeps, so no Kafka is needed);
- `gce`: services/providers/gce.GceProvider against the fake Compute API (tests/unit/scheduler_autoscaler/fake_compute).

The protocol (services/providers/base.py) is idempotent by name: creating a name that exists, or
deleting one that is gone, is not an error. If a behaviour passes on a fake and fails on an adapter
(or the reverse), the fake is lying and the tests built on it are not to be trusted: fix the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from events.codec import Codec
from events.log import EventLog
from events.process.config import ServiceConfig
from events.publisher import Publisher
from events.topics import Topics
from services.providers.base import (
    InstanceProvider,
    InstanceSpec,
    ProviderError,
    QuotaExceeded,
    ZoneExhausted,
)
from services.providers.gce import GceProvider, GceSettings
from services.providers.local import LocalProvider
from services.providers.local import preempt as preempt_local
from services.simworker import SimulatedWorkerFleet
from tests.eventually import eventually
from tests.fakes.instance_provider import MemoryProvider
from tests.unit.scheduler_autoscaler.driver_support import SimProvider
from tests.unit.scheduler_autoscaler.fake_compute import BOOTSTRAP, FakeCompute, FakeComputeServer

GIB = 1024**3
SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")  # a stand-in agent: takes the flags, runs nothing


@dataclass
class Context:
    tmp_path: Path
    log: EventLog  # the in-memory log the simulated workers announce themselves on
    topics: Topics


@dataclass
class Harness:
    """A provider under test, with what the test needs to know of its configuration and the
    adapter's own way to do what only the outside world does (a cloud preempting a VM, a zone filling)."""

    provider: InstanceProvider
    region: str
    zones: list[str]  # what zones_for(region) must answer
    preempt: Callable[[str], Awaitable[None]] | None = None  # None: the provider has no preemption
    fill_zone: Callable[[], Awaitable[str]] | None = None  # makes a zone refuse new instances; returns it

    def spec(self, name: str, zone: str | None = None, preemptible: bool = True) -> InstanceSpec:
        return InstanceSpec(name=name, pool="standard", machine_type="n1-standard-2", cores_mcpu=2000,
                            memory_bytes=8 * GIB, storage_gib=10, preemptible=preemptible, region=self.region,
                            zone=zone)


@pytest.fixture(params=["memory", "sim", "local", "gce"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path, memory_log: EventLog,
                  topics: Topics) -> AsyncIterator[Harness]:
    builders = {"memory": _memory, "sim": _sim, "local": _local, "gce": _gce}
    async with builders[request.param](Context(tmp_path, memory_log, topics)) as h:
        yield h


@contextlib.asynccontextmanager
async def _memory(context: Context) -> AsyncIterator[Harness]:
    provider = MemoryProvider()
    provider.zones = ["zone-a", "zone-b"]

    async def preempt(name: str) -> None:
        provider.preempt(name)

    async def fill_zone() -> str:
        provider.full_zones.add("zone-b")
        return "zone-b"

    yield Harness(provider, "region", ["zone-a", "zone-b"], preempt, fill_zone)
    await provider.close()


@contextlib.asynccontextmanager
async def _sim(context: Context) -> AsyncIterator[Harness]:
    provider = SimProvider(SimulatedWorkerFleet(context.log, Publisher(context.log, context.topics, Codec())))
    yield Harness(provider, "local", [])  # simulated workers: no zones, nothing preempts them
    await provider.close()


@contextlib.asynccontextmanager
async def _local(context: Context) -> AsyncIterator[Harness]:
    tmp_path = context.tmp_path
    config = ServiceConfig(bootstrap_servers="127.0.0.1:9", database_url="", home=tmp_path, topic_prefix="p.")
    provider = LocalProvider(config, SLEEPER, stop_timeout_s=5, zones={"local-a": None, "local-b": 1})

    async def preempt(name: str) -> None:
        await asyncio.to_thread(preempt_local, tmp_path, name)

    async def fill_zone() -> str:  # local-b holds one instance
        await provider.create(replace(harness.spec("filler"), zone="local-b"))
        return "local-b"

    harness = Harness(provider, "local", ["local-a", "local-b"], preempt, fill_zone)
    try:
        yield harness
    finally:  # no stand-in agent outlives its test
        for name in {p.stem for p in (tmp_path / "instances").glob("*.pid")}:
            await provider.delete(name)
        await provider.close()


@contextlib.asynccontextmanager
async def _gce(context: Context) -> AsyncIterator[Harness]:
    zones = ("us-central1-a", "us-central1-b")
    with FakeComputeServer(FakeCompute()) as server:
        provider = GceProvider(GceSettings(
            project="proj", zones=zones, kafka_bootstrap="10.0.0.2:9092", api_endpoint=server.endpoint,
            operation_poll_s=0.01, operation_wait_s=5.0, preemption_poll_s=0.0, bootstrap=BOOTSTRAP))

        async def preempt(name: str) -> None:
            [zone] = [z for (z, n) in server.fake.instances if n == name]
            server.fake.preempt(zone, name)

        async def fill_zone() -> str:
            server.fake.exhausted_zones.add(zones[1])
            return zones[1]

        try:
            yield Harness(provider, "us-central1", list(zones), preempt, fill_zone)
        finally:
            await provider.close()


async def listed(provider: InstanceProvider) -> dict[str, tuple[str, str, str | None]]:
    return {i.name: (i.provider_id, i.status, i.zone) for i in await provider.list()}


async def test_create_returns_the_instance_and_list_shows_it_by_the_same_id(harness: Harness) -> None:
    provider = harness.provider
    assert await provider.list() == []
    created = await provider.create(harness.spec("w1"))
    assert created.name == "w1" and created.provider_id and created.status
    assert (await listed(provider))["w1"][0] == created.provider_id
    await provider.create(harness.spec("w2"))
    assert sorted(await listed(provider)) == ["w1", "w2"]


async def test_creating_a_name_that_exists_is_not_an_error_and_makes_no_second(harness: Harness) -> None:
    provider = harness.provider
    first = await provider.create(harness.spec("w1"))
    again = await provider.create(harness.spec("w1"))  # the autoscaler retrying after a crash
    assert again.name == "w1" and again.provider_id == first.provider_id
    assert [i.name for i in await provider.list()] == ["w1"]


async def test_delete_removes_it_and_deleting_what_is_gone_is_not_an_error(harness: Harness) -> None:
    provider = harness.provider
    one = await provider.create(harness.spec("w1"))
    await provider.create(harness.spec("w2"))
    await provider.delete("w1", one.provider_id)
    assert sorted(await listed(provider)) == ["w2"]
    await provider.delete("w1", one.provider_id)  # already deleted
    await provider.delete("never-created")
    await provider.delete("w2")  # without its provider id: the provider finds it by name
    assert await provider.list() == []


async def test_zones_for_the_region_are_the_configured_ones(harness: Harness) -> None:
    assert harness.provider.zones_for(harness.region) == harness.zones


async def test_an_instance_created_in_a_chosen_zone_is_there_and_listed_there(harness: Harness) -> None:
    if not harness.zones:
        pytest.skip("this provider has no zones (zones_for is empty), so the autoscaler never names one")
    provider = harness.provider
    for i, zone in enumerate(harness.zones):
        created = await provider.create(harness.spec(f"w{i}", zone=zone))
        assert created.zone == zone
    assert {name: zone for name, (_, _, zone) in (await listed(provider)).items()} == {
        f"w{i}": zone for i, zone in enumerate(harness.zones)}


async def test_a_zone_the_provider_does_not_offer_is_refused_as_a_configuration_error(harness: Harness) -> None:
    if not harness.zones:
        pytest.skip("this provider has no zones (zones_for is empty), so the autoscaler never names one")
    with pytest.raises(ProviderError) as refused:
        await harness.provider.create(harness.spec("w1", zone="nowhere-z"))
    # not a capacity error: retrying (elsewhere or later) cannot help
    assert not isinstance(refused.value, ZoneExhausted | QuotaExceeded)
    assert await harness.provider.list() == []


async def test_a_full_zone_refuses_with_zone_exhausted_and_creates_nothing(harness: Harness) -> None:
    if harness.fill_zone is None:
        pytest.skip("this provider has no zones that can fill")
    full = await harness.fill_zone()
    before = await listed(harness.provider)
    with pytest.raises(ZoneExhausted):
        await harness.provider.create(harness.spec("w1", zone=full))
    assert await listed(harness.provider) == before
    other = next(z for z in harness.zones if z != full)
    assert (await harness.provider.create(harness.spec("w2", zone=other))).zone == other  # another zone may


async def test_a_preempted_instance_is_named_by_preempted_and_no_longer_runs(harness: Harness) -> None:
    if harness.preempt is None:
        pytest.skip("nothing preempts this provider's instances")
    provider = harness.provider
    assert await provider.preempted() == []
    await provider.create(harness.spec("w1"))
    await provider.create(harness.spec("w2"))
    await harness.preempt("w1")

    async def reported() -> bool:
        return "w1" in await provider.preempted()

    await eventually(reported)
    assert "w2" not in await provider.preempted()
    now = await listed(provider)
    assert now.get("w1", ("", "gone", None))[1] != "running" and now["w2"][1] != "preempted"
    assert await provider.heal() == [], "a preempted machine is not brought back"
    await provider.delete("w1")
    assert sorted(await listed(provider)) == ["w2"]


async def test_heal_of_a_healthy_fleet_restarts_nothing(harness: Harness) -> None:
    provider = harness.provider
    created = await provider.create(harness.spec("w1"))
    assert await provider.heal() == []
    assert (await listed(provider))["w1"][0] == created.provider_id
