"""The GCE provider: worker VMs on Compute Engine through google-cloud-compute.

create: `instances.insert` (machine type, a boot disk, labels, preemptible → SPOT scheduling,
metadata with the startup script and the worker's settings) in the zone the autoscaler chose
(`InstanceSpec.zone`, drawn by the zones' recent success: a refusal there is reported, and the
zone's weight drops), or, when none was chosen, in the first usable zone of the instance's region,
with a request id so a retried insert is not a second VM. The operation is watched for
`operation_wait_s`: without a chosen zone, a zone without capacity (ZONE_RESOURCE_POOL_EXHAUSTED) is
skipped for a while and the next zone is tried; exhausted quota (QUOTA_EXCEEDED, rate limits)
raises QuotaExceeded for the autoscaler to retry later; an operation still running when the wait
ends counts as accepted (the VM is booting; `list` reconciles).

delete: `instances.delete` (a 404 means already gone). list: `instances.list` per zone, filtered
by the cluster label. preempted: the zones' `compute.instances.preempted` operations, GCE's own record
of each spot VM it reclaimed (at most every `preemption_poll_s`, as Hail reads its activity logs every
15 s). The client can be pointed at any endpoint (tests use a local fake).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import compute_v1

from services.providers.base import (
    InstanceSpec,
    ProviderError,
    ProviderInstance,
    ProviderUnavailable,
    QuotaExceeded,
    ZoneExhausted,
)
from services.providers.gce_startup import WorkerBootstrap, worker_metadata

log = logging.getLogger(__name__)
GIB = 1024**3

_ZONE_EXHAUSTED = frozenset({"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                             "resourcePoolExhausted", "STOCKOUT"})
_QUOTA = frozenset({"QUOTA_EXCEEDED", "quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded",
                    "RATE_LIMIT_EXCEEDED"})


@dataclass(frozen=True)
class GceSettings:
    project: str
    zones: tuple[str, ...]  # e.g. ("us-central1-a", "us-central1-b"); tried in order within a region
    kafka_bootstrap: str  # what the VMs connect to: the cluster's Kafka, reachable from GCE
    topic_prefix: str = "squall."
    namespace: str = "squall"  # label value that marks this cluster's VMs
    boot_image: str = "projects/debian-cloud/global/images/family/debian-12"
    boot_disk_gib: int = 10
    boot_disk_type: str = "pd-ssd"
    network: str = "global/networks/default"
    subnetwork: str | None = None
    service_account: str | None = None
    bootstrap: WorkerBootstrap | None = None  # the release and Kafka credentials every VM gets
    system_bucket: str = "squall-system"  # squall's own bucket: the workers write logs and status there
    extra_labels: dict[str, str] = field(default_factory=dict)
    api_endpoint: str | None = None  # e.g. http://127.0.0.1:PORT for a fake Compute API
    operation_wait_s: float = 30.0
    operation_poll_s: float = 1.0
    transient_retries: int = 3
    exhausted_zone_pause_s: float = 300.0
    preemption_poll_s: float = 15.0


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


class GceProvider:
    name = "gce"

    def __init__(self, settings: GceSettings, credentials: Credentials | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.zones:
            raise ProviderError("the GCE provider needs at least one zone (--gce-zones us-central1-a,...)")
        if settings.bootstrap is None:
            raise ProviderError("the GCE provider needs what its VMs install and trust: the squall release "
                                "(--gce-release-bucket) and the worker's Kafka credentials (--worker-kafka-credentials)")
        self._bootstrap = settings.bootstrap
        self.settings = settings
        options = {"api_endpoint": settings.api_endpoint} if settings.api_endpoint else None
        creds = credentials if credentials is not None else (AnonymousCredentials() if settings.api_endpoint else None)
        self._instances = compute_v1.InstancesClient(credentials=creds, client_options=options)
        # polled by us: the *_unary calls' operations, through a client that honours api_endpoint
        self._operations = compute_v1.ZoneOperationsClient(credentials=creds, client_options=options)
        self._clock = clock
        self._paused_zones: dict[str, float] = {}  # zone -> until (monotonic s)
        self._preemptions_polled: float | None = None

    # ---- create ------------------------------------------------------------------------------

    def zones_for(self, region: str) -> list[str]:
        return [z for z in self.settings.zones if region_of(z) == region]

    async def create(self, spec: InstanceSpec) -> ProviderInstance:
        if spec.zone is not None:  # the autoscaler chose (weighted by success): only there; a refusal is the zone's
            if spec.zone not in self.zones_for(spec.region):
                raise ProviderError(f"zone {spec.zone!r} is not one of region {spec.region!r}'s configured zones: "
                                    f"{', '.join(self.zones_for(spec.region)) or 'none'} (set --gce-zones)")
            await self._insert_in_zone(spec, spec.zone)
            return ProviderInstance(spec.name, f"{spec.zone}/{spec.name}", "provisioning", zone=spec.zone)
        zones = self._zones_for(spec.region)
        last: ProviderError | None = None
        for zone in zones:
            try:
                await self._insert_in_zone(spec, zone)
                return ProviderInstance(spec.name, f"{zone}/{spec.name}", "provisioning", zone=zone)
            except ZoneExhausted as exc:
                log.warning("zone %s cannot hold %s now (%s); trying the next zone", zone, spec.machine_type, exc)
                self._paused_zones[zone] = self._clock() + self.settings.exhausted_zone_pause_s
                last = exc
        raise last or ZoneExhausted(f"every zone of region {spec.region} is paused after exhaustion; retry later")

    def _zones_for(self, region: str) -> list[str]:
        in_region = [z for z in self.settings.zones if region_of(z) == region]
        if not in_region:
            raise ProviderError(f"no configured zone is in region {region!r}; configured zones: "
                                f"{', '.join(self.settings.zones)} (set --gce-zones)")
        now = self._clock()
        return [z for z in in_region if self._paused_zones.get(z, 0.0) <= now]

    async def _insert_in_zone(self, spec: InstanceSpec, zone: str) -> None:
        # one request id for every retry of this insert: GCE then creates the VM at most once
        request_id = str(uuid.uuid4())
        body = self.instance_body(spec, zone)

        async def insert() -> None:
            try:
                operation = await asyncio.to_thread(self._instances.insert_unary, request=compute_v1.InsertInstanceRequest(
                    project=self.settings.project, zone=zone, instance_resource=body, request_id=request_id))
            except gexc.Conflict:
                return  # it exists already: an earlier try got through
            await self._watch(operation, zone, f"insert {spec.name} in {zone}")

        await self._retrying(insert, f"insert {spec.name} in {zone}")

    async def _retrying(self, call: Callable[[], Any], what: str) -> None:
        """Run `call`, retrying transient failures (5xx, timeouts) a few times with backoff."""
        for attempt in range(self.settings.transient_retries + 1):
            try:
                await call()
                return
            except gexc.GoogleAPICallError as exc:
                error = _classify(exc, what)
            except ProviderUnavailable as exc:
                error = exc
            if not isinstance(error, ProviderUnavailable) or attempt == self.settings.transient_retries:
                raise error
            log.info("%s failed transiently (%s); retry %d", what, error, attempt + 1)
            await asyncio.sleep(min(2.0**attempt * 0.2, 5.0))

    async def _watch(self, operation: compute_v1.Operation, zone: str, what: str) -> None:
        """Wait for the operation a while; raise its error if it failed, return if done or still running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.operation_wait_s
        while operation.status != compute_v1.Operation.Status.DONE:
            if loop.time() >= deadline:
                log.info("%s still running after %.0fs; treating it as accepted", what, self.settings.operation_wait_s)
                return
            await asyncio.sleep(self.settings.operation_poll_s)
            operation = await asyncio.to_thread(
                self._operations.get, project=self.settings.project, zone=zone, operation=operation.name)
        failure = _operation_error(operation, what)
        if failure is not None:
            raise failure

    def instance_body(self, spec: InstanceSpec, zone: str) -> compute_v1.Instance:
        s = self.settings
        scheduling = compute_v1.Scheduling(automatic_restart=False, on_host_maintenance="TERMINATE",
                                           preemptible=spec.preemptible)
        if spec.preemptible:
            scheduling.provisioning_model = "SPOT"
            scheduling.instance_termination_action = "DELETE"
        metadata = worker_metadata(
            cores=max(1, spec.cores_mcpu // 1000), memory_gib=spec.memory_bytes / GIB, storage_gib=spec.storage_gib,
            pool=spec.pool, region=spec.region, preemptible=spec.preemptible, kafka_bootstrap=s.kafka_bootstrap,
            topic_prefix=s.topic_prefix, bootstrap=self._bootstrap, job_private_for=spec.job_private_for,
            system_bucket=s.system_bucket)
        disks = [compute_v1.AttachedDisk(
            boot=True, auto_delete=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=s.boot_image, disk_size_gb=s.boot_disk_gib,
                disk_type=f"zones/{zone}/diskTypes/{s.boot_disk_type}"))]
        if spec.storage_gib > 0:  # the jobs' scratch space: a separate data disk
            disks.append(compute_v1.AttachedDisk(
                boot=False, auto_delete=True, device_name="squall-data",
                initialize_params=compute_v1.AttachedDiskInitializeParams(
                    disk_size_gb=spec.storage_gib, disk_type=f"zones/{zone}/diskTypes/{s.boot_disk_type}")))
        interface = compute_v1.NetworkInterface(
            network=s.network, access_configs=[compute_v1.AccessConfig(name="external-nat", type_="ONE_TO_ONE_NAT")])
        if s.subnetwork:
            interface.subnetwork = s.subnetwork
        instance = compute_v1.Instance(
            name=spec.name, machine_type=f"zones/{zone}/machineTypes/{spec.machine_type}",
            labels={"role": "squall-worker", "namespace": s.namespace, "pool": _label(spec.pool),
                    **({"job-private": "true"} if spec.job_private_for else {}), **s.extra_labels},
            disks=disks, network_interfaces=[interface], scheduling=scheduling,
            metadata=compute_v1.Metadata(items=[compute_v1.Items(key=k, value=v) for k, v in metadata.items()]))
        if s.service_account:
            instance.service_accounts = [compute_v1.ServiceAccount(
                email=s.service_account, scopes=["https://www.googleapis.com/auth/cloud-platform"])]
        return instance

    # ---- delete / list -----------------------------------------------------------------------

    async def delete(self, name: str, provider_id: str | None = None) -> None:
        zones = [provider_id.split("/", 1)[0]] if provider_id and "/" in provider_id else list(self.settings.zones)
        for zone in zones:
            request_id = str(uuid.uuid4())

            async def delete_in(zone: str = zone, request_id: str = request_id) -> None:
                try:
                    operation = await asyncio.to_thread(
                        self._instances.delete_unary, request=compute_v1.DeleteInstanceRequest(
                            project=self.settings.project, zone=zone, instance=name, request_id=request_id))
                except gexc.NotFound:
                    return  # not in this zone, or already deleted
                await self._watch(operation, zone, f"delete {name} in {zone}")

            await self._retrying(delete_in, f"delete {name} in {zone}")

    async def list(self) -> list[ProviderInstance]:
        found: list[ProviderInstance] = []
        for zone in self.settings.zones:
            request = compute_v1.ListInstancesRequest(project=self.settings.project, zone=zone,
                                                      filter=f"labels.namespace = {self.settings.namespace}")
            try:
                instances = await asyncio.to_thread(_list_all, self._instances, request)
            except gexc.GoogleAPICallError as exc:
                raise _classify(exc, f"list instances in {zone}") from exc
            found.extend(ProviderInstance(i.name, f"{zone}/{i.name}", i.status.lower(), zone=zone) for i in instances)
        return found

    async def preempted(self) -> builtins.list[str]:
        now = self._clock()
        if self._preemptions_polled is not None and now - self._preemptions_polled < self.settings.preemption_poll_s:
            return []
        self._preemptions_polled = now
        names: list[str] = []
        for zone in self.settings.zones:
            request = compute_v1.ListZoneOperationsRequest(project=self.settings.project, zone=zone,
                                                           filter='operationType = "compute.instances.preempted"')
            try:
                operations = await asyncio.to_thread(_list_all_operations, self._operations, request)
            except gexc.GoogleAPICallError as exc:
                raise _classify(exc, f"list preemptions in {zone}") from exc
            names.extend(op.target_link.rsplit("/", 1)[-1] for op in operations if op.target_link)
        return names

    async def heal(self) -> builtins.list[str]:
        return []  # a VM restarts its own agent (gce_startup.py); one that is gone is reconciled

    async def close(self) -> None:
        await asyncio.to_thread(self._instances.transport.close)
        await asyncio.to_thread(self._operations.transport.close)


def _list_all(client: compute_v1.InstancesClient, request: compute_v1.ListInstancesRequest) -> list[compute_v1.Instance]:
    return list(client.list(request=request))  # the pager fetches every page


def _list_all_operations(client: compute_v1.ZoneOperationsClient,
                         request: compute_v1.ListZoneOperationsRequest) -> list[compute_v1.Operation]:
    return list(client.list(request=request))


def _label(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def _operation_error(operation: compute_v1.Operation, what: str) -> ProviderError | None:
    errors = list(operation.error.errors) if operation.error else []
    if not errors and not operation.http_error_status_code:
        return None
    codes = {e.code for e in errors}
    message = f"{what}: {'; '.join(f'{e.code}: {e.message}' for e in errors) or operation.http_error_message}"
    if codes & _ZONE_EXHAUSTED:
        return ZoneExhausted(message)
    if codes & _QUOTA:
        return QuotaExceeded(message)
    if operation.http_error_status_code >= 500:
        return ProviderUnavailable(message)
    return ProviderError(message)


def _error_codes(exc: BaseException) -> set[str]:
    codes = set()
    for error in getattr(exc, "errors", None) or ():
        for attribute in ("code", "reason"):
            value = error.get(attribute) if isinstance(error, dict) else getattr(error, attribute, None)
            if value:
                codes.add(str(value))
    reason = getattr(exc, "reason", None)
    if reason:
        codes.add(str(reason))
    text = str(exc)
    codes.update(code for code in _ZONE_EXHAUSTED | _QUOTA if code in text)
    return codes


def _classify(exc: BaseException, what: str) -> ProviderError:
    codes = _error_codes(exc)
    message = f"{what}: {exc}"
    if codes & _ZONE_EXHAUSTED:
        return ZoneExhausted(message)
    if codes & _QUOTA or isinstance(exc, gexc.TooManyRequests):
        return QuotaExceeded(message)
    if isinstance(exc, gexc.ServerError | gexc.DeadlineExceeded | gexc.RetryError | OSError):
        return ProviderUnavailable(message)
    return ProviderError(message)
