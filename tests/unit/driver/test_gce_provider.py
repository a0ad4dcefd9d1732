"""The GCE provider against a local fake of the Compute API: the calls it makes, and its error handling."""

from __future__ import annotations

import pytest

from services.providers.base import InstanceSpec, ProviderError, QuotaExceeded, ZoneExhausted
from services.providers.gce import GceProvider, GceSettings
from tests.unit.driver.fake_compute import BOOTSTRAP, FakeCompute, FakeComputeServer

GIB = 1024**3


def spec(name: str = "squall-standard-abc", preemptible: bool = True, region: str = "us-central1") -> InstanceSpec:
    return InstanceSpec(name=name, pool="standard", machine_type="n1-standard-16", cores_mcpu=16_000,
                        memory_bytes=60 * GIB, storage_gib=375, preemptible=preemptible, region=region)


def provider(server: FakeComputeServer, zones: tuple[str, ...] = ("us-central1-a", "us-central1-b")) -> GceProvider:
    return GceProvider(GceSettings(project="proj", zones=zones, kafka_bootstrap="10.0.0.2:9092",
                                   topic_prefix="prod.", api_endpoint=server.endpoint, operation_poll_s=0.01,
                                   operation_wait_s=5.0, exhausted_zone_pause_s=60.0, bootstrap=BOOTSTRAP))


async def test_insert_sends_machine_type_disks_labels_spot_scheduling_and_startup_metadata() -> None:
    with FakeComputeServer(FakeCompute(polls_until_done=2)) as server:
        gce = provider(server)
        created = await gce.create(spec())
        assert created.provider_id == "us-central1-a/squall-standard-abc"
        [insert] = server.fake.inserts()
        body = insert.body or {}
        assert insert.zone == "us-central1-a" and insert.query.get("requestId")
        assert body["machineType"] == "zones/us-central1-a/machineTypes/n1-standard-16"
        assert body["labels"] == {"role": "squall-worker", "namespace": "squall", "pool": "standard"}
        assert body["scheduling"]["provisioningModel"] == "SPOT"
        assert body["scheduling"]["instanceTerminationAction"] == "DELETE"
        assert body["scheduling"]["preemptible"] is True
        boot, data = body["disks"]
        assert boot["boot"] is True and boot["initializeParams"]["diskSizeGb"] == "10"
        assert data["initializeParams"]["diskSizeGb"] == "375"
        metadata = {i["key"]: i["value"] for i in body["metadata"]["items"]}
        assert metadata["squall-kafka-bootstrap"] == "10.0.0.2:9092"
        assert metadata["squall-topic-prefix"] == "prod."
        assert metadata["squall-cores"] == "16" and metadata["squall-pool"] == "standard"
        assert "-m worker" in metadata["startup-script"]
        assert (metadata["squall-wheel-url"], metadata["squall-wheel-sha256"]) == (BOOTSTRAP.wheel_url, "ab12")
        assert metadata["squall-kafka-password-secret"] == BOOTSTRAP.kafka_password_secret
        assert "squall-kafka-password" not in metadata and "squall-package" not in metadata
        polls = [c for c in server.fake.calls if c.path.startswith("operations/")]
        assert len(polls) == 2  # it waited for the operation to finish
        await gce.close()


async def test_non_preemptible_instances_use_standard_scheduling() -> None:
    with FakeComputeServer() as server:
        gce = provider(server)
        await gce.create(spec(preemptible=False))
        scheduling = server.fake.inserts()[0].body["scheduling"]  # type: ignore[index]
        assert scheduling["preemptible"] is False and "provisioningModel" not in scheduling
        await gce.close()


async def test_an_exhausted_zone_is_skipped_for_the_next_one_and_then_paused() -> None:
    with FakeComputeServer(FakeCompute(exhausted_zones={"us-central1-a"})) as server:
        gce = provider(server)
        created = await gce.create(spec("one"))
        assert created.provider_id == "us-central1-b/one"
        await gce.create(spec("two"))  # zone a is paused: no second try there
        assert [c.zone for c in server.fake.inserts()] == ["us-central1-a", "us-central1-b", "us-central1-b"]
        server.fake.exhausted_zones.add("us-central1-b")
        with pytest.raises(ZoneExhausted):
            await gce.create(spec("three"))
        await gce.close()


async def test_quota_exceeded_is_reported_for_a_later_retry() -> None:
    with FakeComputeServer(FakeCompute(quota_exceeded=True)) as server:
        gce = provider(server)
        with pytest.raises(QuotaExceeded, match="CPUS"):
            await gce.create(spec())
        assert len(server.fake.inserts()) == 1  # quota is regional: other zones would fail the same way
        await gce.close()


async def test_transient_errors_are_retried_with_the_same_request_id() -> None:
    with FakeComputeServer(FakeCompute(fail_next_posts=2)) as server:
        gce = provider(server)
        await gce.create(spec())
        inserts = server.fake.inserts()
        assert len(inserts) == 3
        assert len({c.query["requestId"][0] for c in inserts}) == 1
        assert list(server.fake.instances) == [("us-central1-a", "squall-standard-abc")]
        await gce.close()


async def test_an_operation_still_running_counts_as_accepted() -> None:
    with FakeComputeServer(FakeCompute(polls_until_done=10**6)) as server:
        gce = GceProvider(GceSettings(project="proj", zones=("us-central1-a",), kafka_bootstrap="k:9092",
                                      api_endpoint=server.endpoint, operation_poll_s=0.01, operation_wait_s=0.1,
                                      bootstrap=BOOTSTRAP))
        created = await gce.create(spec())
        assert created.status == "provisioning"
        await gce.close()


async def test_delete_without_a_provider_id_asks_every_zone() -> None:
    """(Create, list, delete and their idempotence are the InstanceProvider contract's:
    tests/contract/test_instance_provider.py.) Without the zone, the VM is looked for in each."""
    with FakeComputeServer() as server:
        gce = provider(server)
        await gce.create(spec("b1", region="us-central1"))
        await gce.delete("b1")
        assert await gce.list() == []
        assert [c.zone for c in server.fake.deletes()] == ["us-central1-a", "us-central1-b"]
        await gce.close()


def test_a_region_without_configured_zones_is_a_configuration_error() -> None:
    with FakeComputeServer() as server:
        gce = provider(server)
        with pytest.raises(ProviderError, match="--gce-zones"):
            gce._zones_for("europe-west1")
