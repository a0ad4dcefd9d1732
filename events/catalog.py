"""Event types, generated from schemas/ by `python -m events.codegen`. Do not edit by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvVar:
    """EnvVar"""

    name: str
    value: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'value': self.value,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> EnvVar:
        return cls(
            name=d['name'],
            value=d['value'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCopy:
    """FileCopy"""

    src: str
    dst: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'src': self.src,
            'dst': self.dst,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> FileCopy:
        return cls(
            src=d['src'],
            dst=d['dst'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """Resolved resources (Hail's rules applied by the front end)."""

    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    worker_type: str
    machine_type: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
            'preemptible': self.preemptible,
            'worker_type': self.worker_type,
            'machine_type': self.machine_type,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> Resources:
        return cls(
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
            preemptible=d['preemptible'],
            worker_type=d['worker_type'],
            machine_type=d['machine_type'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """What a worker needs to run the job."""

    process_type: str
    image: str | None = None
    command: tuple[str, ...]
    jar_url: str | None = None
    env: tuple[EnvVar, ...]
    input_files: tuple[FileCopy, ...]
    output_files: tuple[FileCopy, ...]
    always_copy_output: bool
    timeout_s: float | None = None
    network: str
    resources: Resources
    regions: tuple[str, ...] | None = None
    port: int | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'process_type': self.process_type,
            'image': self.image,
            'command': list(self.command),
            'jar_url': self.jar_url,
            'env': [v.to_avro() for v in self.env],
            'input_files': [v.to_avro() for v in self.input_files],
            'output_files': [v.to_avro() for v in self.output_files],
            'always_copy_output': self.always_copy_output,
            'timeout_s': self.timeout_s,
            'network': self.network,
            'resources': self.resources.to_avro(),
            'regions': (None if self.regions is None else list(self.regions)),
            'port': self.port,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobSpec:
        return cls(
            process_type=d['process_type'],
            image=d['image'],
            command=tuple(d['command']),
            jar_url=d['jar_url'],
            env=tuple(EnvVar.from_avro(v) for v in d['env']),
            input_files=tuple(FileCopy.from_avro(v) for v in d['input_files']),
            output_files=tuple(FileCopy.from_avro(v) for v in d['output_files']),
            always_copy_output=d['always_copy_output'],
            timeout_s=d['timeout_s'],
            network=d['network'],
            resources=Resources.from_avro(d['resources']),
            regions=(None if d['regions'] is None else tuple(d['regions'])),
            port=d['port'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When a failed attempt is retried beyond Hail's rule (system failures only), and how: squall's retry_policy job-spec field (or the batch's default, or the squall.retry_policy attribute), checked by the front end."""

    oom_memory_multiplier: float | None = None
    oom_max_memory_bytes: int | None = None
    max_preemptions: int | None = None
    retry_exit_codes: tuple[int, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            'oom_memory_multiplier': self.oom_memory_multiplier,
            'oom_max_memory_bytes': self.oom_max_memory_bytes,
            'max_preemptions': self.max_preemptions,
            'retry_exit_codes': list(self.retry_exit_codes),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> RetryPolicy:
        return cls(
            oom_memory_multiplier=d['oom_memory_multiplier'],
            oom_max_memory_bytes=d['oom_max_memory_bytes'],
            max_preemptions=d['max_preemptions'],
            retry_exit_codes=tuple(d['retry_exit_codes']),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepTiming:
    """StepTiming"""

    name: str
    state: str
    started_at: int | None = None
    ended_at: int | None = None
    exit_code: int | None = None
    out_of_memory: bool = False
    error: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'state': self.state,
            'started_at': self.started_at,
            'ended_at': self.ended_at,
            'exit_code': self.exit_code,
            'out_of_memory': self.out_of_memory,
            'error': self.error,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> StepTiming:
        return cls(
            name=d['name'],
            state=d['state'],
            started_at=d['started_at'],
            ended_at=d['ended_at'],
            exit_code=d['exit_code'],
            out_of_memory=d['out_of_memory'],
            error=d['error'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceUsageSummary:
    """ResourceUsageSummary"""

    cpu_msec: int
    max_memory_bytes: int
    max_scratch_bytes: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'cpu_msec': self.cpu_msec,
            'max_memory_bytes': self.max_memory_bytes,
            'max_scratch_bytes': self.max_scratch_bytes,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> ResourceUsageSummary:
        return cls(
            cpu_msec=d['cpu_msec'],
            max_memory_bytes=d['max_memory_bytes'],
            max_scratch_bytes=d['max_scratch_bytes'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolWindowUser:
    """One user's part of the look-ahead window."""

    user: str
    share_mcpu: int
    jobs_per_pass: int
    window_jobs: int
    n_jobs: int
    demand_mcpu: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'user': self.user,
            'share_mcpu': self.share_mcpu,
            'jobs_per_pass': self.jobs_per_pass,
            'window_jobs': self.window_jobs,
            'n_jobs': self.n_jobs,
            'demand_mcpu': self.demand_mcpu,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> PoolWindowUser:
        return cls(
            user=d['user'],
            share_mcpu=d['share_mcpu'],
            jobs_per_pass=d['jobs_per_pass'],
            window_jobs=d['window_jobs'],
            n_jobs=d['n_jobs'],
            demand_mcpu=d['demand_mcpu'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolZoneWeight:
    """A zone's weight from its recent creations."""

    zone: str
    successes: int
    attempts: int
    weight: float

    def to_avro(self) -> dict[str, Any]:
        return {
            'zone': self.zone,
            'successes': self.successes,
            'attempts': self.attempts,
            'weight': self.weight,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> PoolZoneWeight:
        return cls(
            zone=d['zone'],
            successes=d['successes'],
            attempts=d['attempts'],
            weight=d['weight'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolInstanceChoice:
    """An instance requested by this decision."""

    instance_name: str
    zone: str | None = None
    standing: bool

    def to_avro(self) -> dict[str, Any]:
        return {
            'instance_name': self.instance_name,
            'zone': self.zone,
            'standing': self.standing,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> PoolInstanceChoice:
        return cls(
            instance_name=d['instance_name'],
            zone=d['zone'],
            standing=d['standing'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningAttempt:
    """RunningAttempt"""

    job_id: int
    attempt_id: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> RunningAttempt:
        return cls(
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptAssigned:
    """Derived from an accepted SJ: the worker must run this attempt."""

    SCHEMA_NAME: ClassVar[str] = "AttemptAssigned"
    TOPIC: ClassVar[str] = "assignment"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    batch_id: int
    job_id: int
    attempt_id: str
    job_group_id: int
    user: str
    spec: JobSpec
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'job_group_id': self.job_group_id,
            'user': self.user,
            'spec': self.spec.to_avro(),
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> AttemptAssigned:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            job_group_id=d['job_group_id'],
            user=d['user'],
            spec=JobSpec.from_avro(d['spec']),
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptKillRequested:
    """The worker must stop this attempt and report it Cancelled."""

    SCHEMA_NAME: ClassVar[str] = "AttemptKillRequested"
    TOPIC: ClassVar[str] = "assignment"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    batch_id: int
    job_id: int
    attempt_id: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> AttemptKillRequested:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCancelRequested:
    """A user asked to cancel the whole batch (root group)."""

    SCHEMA_NAME: ClassVar[str] = "BatchCancelRequested"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    user: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'user': self.user,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchCancelRequested:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            user=d['user'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCancelled:
    """Derived: the batch is cancelled; no further updates are accepted."""

    SCHEMA_NAME: ClassVar[str] = "BatchCancelled"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    reason: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchCancelled:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCompleted:
    """Derived: every job of every committed update is complete."""

    SCHEMA_NAME: ClassVar[str] = "BatchCompleted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    n_jobs: int
    n_succeeded: int
    n_failed: int
    n_cancelled: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'n_jobs': self.n_jobs,
            'n_succeeded': self.n_succeeded,
            'n_failed': self.n_failed,
            'n_cancelled': self.n_cancelled,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchCompleted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            n_jobs=d['n_jobs'],
            n_succeeded=d['n_succeeded'],
            n_failed=d['n_failed'],
            n_cancelled=d['n_cancelled'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCreated:
    """A user created a batch (its root job group 0 comes with it)."""

    SCHEMA_NAME: ClassVar[str] = "BatchCreated"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    user: str
    billing_project: str
    token: str
    attributes: dict[str, str]
    callback: str | None = None
    cancel_after_n_failures: int | None = None
    retry_policy: RetryPolicy | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'user': self.user,
            'billing_project': self.billing_project,
            'token': self.token,
            'attributes': self.attributes,
            'callback': self.callback,
            'cancel_after_n_failures': self.cancel_after_n_failures,
            'retry_policy': (None if self.retry_policy is None else self.retry_policy.to_avro()),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchCreated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            user=d['user'],
            billing_project=d['billing_project'],
            token=d['token'],
            attributes=dict(d['attributes']),
            callback=d['callback'],
            cancel_after_n_failures=d['cancel_after_n_failures'],
            retry_policy=(None if d['retry_policy'] is None else RetryPolicy.from_avro(d['retry_policy'])),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchDeleted:
    """A user deleted the batch: it is hidden from listings."""

    SCHEMA_NAME: ClassVar[str] = "BatchDeleted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    user: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'user': self.user,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchDeleted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            user=d['user'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchUpdateCommitted:
    """An update's jobs were all received and became part of the batch."""

    SCHEMA_NAME: ClassVar[str] = "BatchUpdateCommitted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    update_id: int
    n_jobs: int
    n_job_groups: int
    start_job_id: int
    start_job_group_id: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'update_id': self.update_id,
            'n_jobs': self.n_jobs,
            'n_job_groups': self.n_job_groups,
            'start_job_id': self.start_job_id,
            'start_job_group_id': self.start_job_group_id,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchUpdateCommitted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            update_id=d['update_id'],
            n_jobs=d['n_jobs'],
            n_job_groups=d['n_job_groups'],
            start_job_id=d['start_job_id'],
            start_job_group_id=d['start_job_group_id'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchUpdateCreated:
    """An update reserved a contiguous block of job and job-group ids."""

    SCHEMA_NAME: ClassVar[str] = "BatchUpdateCreated"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    update_id: int
    token: str
    n_jobs: int
    n_job_groups: int
    start_job_id: int
    start_job_group_id: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'update_id': self.update_id,
            'token': self.token,
            'n_jobs': self.n_jobs,
            'n_job_groups': self.n_job_groups,
            'start_job_id': self.start_job_id,
            'start_job_group_id': self.start_job_group_id,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> BatchUpdateCreated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            update_id=d['update_id'],
            token=d['token'],
            n_jobs=d['n_jobs'],
            n_job_groups=d['n_job_groups'],
            start_job_id=d['start_job_id'],
            start_job_group_id=d['start_job_group_id'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceActivated:
    """The worker agent on the instance announced itself and is ready for work."""

    SCHEMA_NAME: ClassVar[str] = "InstanceActivated"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    pool: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    region: str
    preemptible: bool
    agent_version: str | None = None
    agent_url: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'pool': self.pool,
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
            'region': self.region,
            'preemptible': self.preemptible,
            'agent_version': self.agent_version,
            'agent_url': self.agent_url,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceActivated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            pool=d['pool'],
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
            region=d['region'],
            preemptible=d['preemptible'],
            agent_version=d['agent_version'],
            agent_url=d['agent_url'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceCreated:
    """The provider accepted the instance (it is booting)."""

    SCHEMA_NAME: ClassVar[str] = "InstanceCreated"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    provider: str
    provider_id: str | None = None
    zone: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'provider': self.provider,
            'provider_id': self.provider_id,
            'zone': self.zone,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceCreated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            provider=d['provider'],
            provider_id=d['provider_id'],
            zone=d['zone'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDeactivated:
    """The instance takes no more work (drained, unresponsive, preempted, idle)."""

    SCHEMA_NAME: ClassVar[str] = "InstanceDeactivated"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    reason: str
    zone: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'reason': self.reason,
            'zone': self.zone,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceDeactivated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            reason=d['reason'],
            zone=d['zone'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDeleted:
    """The instance is gone."""

    SCHEMA_NAME: ClassVar[str] = "InstanceDeleted"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceDeleted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceHeartbeat:
    """The worker is alive; lists the attempts it is running."""

    SCHEMA_NAME: ClassVar[str] = "InstanceHeartbeat"
    TOPIC: ClassVar[str] = "heartbeat"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    running_attempt_ids: tuple[str, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'running_attempt_ids': list(self.running_attempt_ids),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceHeartbeat:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            running_attempt_ids=tuple(d['running_attempt_ids']),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRequested:
    """The autoscaler asked a provider for an instance."""

    SCHEMA_NAME: ClassVar[str] = "InstanceRequested"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'instance_name'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    instance_name: str
    pool: str
    provider: str
    machine_type: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    preemptible: bool
    region: str
    job_private_for: str | None = None
    standing: bool = False
    zone: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'instance_name': self.instance_name,
            'pool': self.pool,
            'provider': self.provider,
            'machine_type': self.machine_type,
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
            'preemptible': self.preemptible,
            'region': self.region,
            'job_private_for': self.job_private_for,
            'standing': self.standing,
            'zone': self.zone,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> InstanceRequested:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            instance_name=d['instance_name'],
            pool=d['pool'],
            provider=d['provider'],
            machine_type=d['machine_type'],
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
            preemptible=d['preemptible'],
            region=d['region'],
            job_private_for=d['job_private_for'],
            standing=d['standing'],
            zone=d['zone'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAttemptAccepted:
    """Derived by the resolver: a scheduling decision (SJ or JobCreating, its causation_id) counts. Every fold that follows placements (read models, the scheduler's view) takes the attempt from here, never from the decision itself; occurred_at is the decision's."""

    SCHEMA_NAME: ClassVar[str] = "JobAttemptAccepted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    state: str
    scheduler_epoch: int
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'state': self.state,
            'scheduler_epoch': self.scheduler_epoch,
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobAttemptAccepted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            state=d['state'],
            scheduler_epoch=d['scheduler_epoch'],
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAttemptCompleted:
    """MJC: the attempt ended (reported by the worker, or by the driver when the instance was lost)."""

    SCHEMA_NAME: ClassVar[str] = "JobAttemptCompleted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    outcome: str
    exit_code: int | None = None
    failure_cause: str | None = None
    error: str | None = None
    out_of_memory: bool
    started_at: int | None = None
    ended_at: int
    steps: tuple[StepTiming, ...]
    resource_usage: ResourceUsageSummary | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'outcome': self.outcome,
            'exit_code': self.exit_code,
            'failure_cause': self.failure_cause,
            'error': self.error,
            'out_of_memory': self.out_of_memory,
            'started_at': self.started_at,
            'ended_at': self.ended_at,
            'steps': [v.to_avro() for v in self.steps],
            'resource_usage': (None if self.resource_usage is None else self.resource_usage.to_avro()),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobAttemptCompleted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            outcome=d['outcome'],
            exit_code=d['exit_code'],
            failure_cause=d['failure_cause'],
            error=d['error'],
            out_of_memory=d['out_of_memory'],
            started_at=d['started_at'],
            ended_at=d['ended_at'],
            steps=tuple(StepTiming.from_avro(v) for v in d['steps']),
            resource_usage=(None if d['resource_usage'] is None else ResourceUsageSummary.from_avro(d['resource_usage'])),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAttemptRefused:
    """Derived by the resolver: a scheduling decision (SJ or JobCreating, its causation_id) does not count, and why. Nothing runs for it; whoever held capacity for it lets go."""

    SCHEMA_NAME: ClassVar[str] = "JobAttemptRefused"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    state: str
    scheduler_epoch: int
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'state': self.state,
            'scheduler_epoch': self.scheduler_epoch,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobAttemptRefused:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            state=d['state'],
            scheduler_epoch=d['scheduler_epoch'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAttemptScheduled:
    """SJ: the scheduler placed a Ready job on an instance with a fresh attempt id."""

    SCHEMA_NAME: ClassVar[str] = "JobAttemptScheduled"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    scheduler_epoch: int
    user: str
    cores_mcpu: int
    memory_bytes: int
    storage_gib: int
    awaits_verdict: bool

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'scheduler_epoch': self.scheduler_epoch,
            'user': self.user,
            'cores_mcpu': self.cores_mcpu,
            'memory_bytes': self.memory_bytes,
            'storage_gib': self.storage_gib,
            'awaits_verdict': self.awaits_verdict,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobAttemptScheduled:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            scheduler_epoch=d['scheduler_epoch'],
            user=d['user'],
            cores_mcpu=d['cores_mcpu'],
            memory_bytes=d['memory_bytes'],
            storage_gib=d['storage_gib'],
            awaits_verdict=d['awaits_verdict'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobAttemptStarted:
    """MJS: the worker started the attempt."""

    SCHEMA_NAME: ClassVar[str] = "JobAttemptStarted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    started_at: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'started_at': self.started_at,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobAttemptStarted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            started_at=d['started_at'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobBecameReady:
    """Derived: all parents are complete (or a retry's backoff was set); the job may be scheduled."""

    SCHEMA_NAME: ClassVar[str] = "JobBecameReady"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    after_attempt_id: str | None = None
    not_before: int | None = None
    reason: str
    retry_cause: str | None = None
    retry_rule: str | None = None
    memory_bytes: int | None = None
    preemptible: bool | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'after_attempt_id': self.after_attempt_id,
            'not_before': self.not_before,
            'reason': self.reason,
            'retry_cause': self.retry_cause,
            'retry_rule': self.retry_rule,
            'memory_bytes': self.memory_bytes,
            'preemptible': self.preemptible,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobBecameReady:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            after_attempt_id=d['after_attempt_id'],
            not_before=d['not_before'],
            reason=d['reason'],
            retry_cause=d['retry_cause'],
            retry_rule=d['retry_rule'],
            memory_bytes=d['memory_bytes'],
            preemptible=d['preemptible'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCancelled:
    """Derived: the job completes as Cancelled without running (again)."""

    SCHEMA_NAME: ClassVar[str] = "JobCancelled"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobCancelled:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCompleted:
    """Derived: the job reached a terminal state after an attempt (or ran out of attempts)."""

    SCHEMA_NAME: ClassVar[str] = "JobCompleted"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    state: str
    attempt_id: str | None = None
    exit_code: int | None = None
    reason: str | None = None
    n_attempts: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'state': self.state,
            'attempt_id': self.attempt_id,
            'exit_code': self.exit_code,
            'reason': self.reason,
            'n_attempts': self.n_attempts,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobCompleted:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            state=d['state'],
            attempt_id=d['attempt_id'],
            exit_code=d['exit_code'],
            reason=d['reason'],
            n_attempts=d['n_attempts'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCreated:
    """A job was submitted in an update (visible once the update commits)."""

    SCHEMA_NAME: ClassVar[str] = "JobCreated"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    update_id: int
    job_group_id: int
    parent_ids: tuple[int, ...]
    always_run: bool
    n_max_attempts: int
    user: str
    billing_project: str
    attributes: dict[str, str]
    spec: JobSpec
    spec_json: str
    retry_policy: RetryPolicy | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'update_id': self.update_id,
            'job_group_id': self.job_group_id,
            'parent_ids': list(self.parent_ids),
            'always_run': self.always_run,
            'n_max_attempts': self.n_max_attempts,
            'user': self.user,
            'billing_project': self.billing_project,
            'attributes': self.attributes,
            'spec': self.spec.to_avro(),
            'spec_json': self.spec_json,
            'retry_policy': (None if self.retry_policy is None else self.retry_policy.to_avro()),
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobCreated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            update_id=d['update_id'],
            job_group_id=d['job_group_id'],
            parent_ids=tuple(d['parent_ids']),
            always_run=d['always_run'],
            n_max_attempts=d['n_max_attempts'],
            user=d['user'],
            billing_project=d['billing_project'],
            attributes=dict(d['attributes']),
            spec=JobSpec.from_avro(d['spec']),
            spec_json=d['spec_json'],
            retry_policy=(None if d['retry_policy'] is None else RetryPolicy.from_avro(d['retry_policy'])),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobCreating:
    """A job-private instance is being created for the job's attempt."""

    SCHEMA_NAME: ClassVar[str] = "JobCreating"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_id: int
    attempt_id: str
    instance_name: str
    scheduler_epoch: int
    user: str
    awaits_verdict: bool

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_id': self.job_id,
            'attempt_id': self.attempt_id,
            'instance_name': self.instance_name,
            'scheduler_epoch': self.scheduler_epoch,
            'user': self.user,
            'awaits_verdict': self.awaits_verdict,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobCreating:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_id=d['job_id'],
            attempt_id=d['attempt_id'],
            instance_name=d['instance_name'],
            scheduler_epoch=d['scheduler_epoch'],
            user=d['user'],
            awaits_verdict=d['awaits_verdict'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGroupCancelRequested:
    """A user asked to cancel a job group and its descendants."""

    SCHEMA_NAME: ClassVar[str] = "JobGroupCancelRequested"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_group_id: int
    user: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_group_id': self.job_group_id,
            'user': self.user,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobGroupCancelRequested:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_group_id=d['job_group_id'],
            user=d['user'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGroupCancelled:
    """Derived: the group counts as cancelled (directly or by cancel_after_n_failures)."""

    SCHEMA_NAME: ClassVar[str] = "JobGroupCancelled"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    job_group_id: int
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'job_group_id': self.job_group_id,
            'reason': self.reason,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobGroupCancelled:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            job_group_id=d['job_group_id'],
            reason=d['reason'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobGroupCreated:
    """A job group was added by an update."""

    SCHEMA_NAME: ClassVar[str] = "JobGroupCreated"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    update_id: int
    job_group_id: int
    parent_job_group_id: int
    attributes: dict[str, str]
    callback: str | None = None
    cancel_after_n_failures: int | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'update_id': self.update_id,
            'job_group_id': self.job_group_id,
            'parent_job_group_id': self.parent_job_group_id,
            'attributes': self.attributes,
            'callback': self.callback,
            'cancel_after_n_failures': self.cancel_after_n_failures,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> JobGroupCreated:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            update_id=d['update_id'],
            job_group_id=d['job_group_id'],
            parent_job_group_id=d['parent_job_group_id'],
            attributes=dict(d['attributes']),
            callback=d['callback'],
            cancel_after_n_failures=d['cancel_after_n_failures'],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolScalingDecided:
    """What the autoscaler decided for one pool in one loop, and the numbers it compared (appended when it acts or its picture changes)."""

    SCHEMA_NAME: ClassVar[str] = "PoolScalingDecided"
    TOPIC: ClassVar[str] = "instance"
    KEY_FIELD: ClassVar[str | None] = 'pool'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    pool: str
    requested: int
    standing_requested: int
    deleted: int
    limited_by: str | None = None
    paused_until: int | None = None
    ready_mcpu: int
    demand_mcpu: int
    demand_truncated: bool
    future_mcpu: int
    window_ms: int
    free_mcpu: int
    pending_mcpu: int
    live: int
    pending: int
    inactive: int
    min_instances: int
    max_live_instances: int
    max_instances: int
    max_new_per_loop: int
    worker_cores: int
    standing_worker_cores: int
    users: tuple[PoolWindowUser, ...]
    zones: tuple[PoolZoneWeight, ...]
    instances: tuple[PoolInstanceChoice, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'pool': self.pool,
            'requested': self.requested,
            'standing_requested': self.standing_requested,
            'deleted': self.deleted,
            'limited_by': self.limited_by,
            'paused_until': self.paused_until,
            'ready_mcpu': self.ready_mcpu,
            'demand_mcpu': self.demand_mcpu,
            'demand_truncated': self.demand_truncated,
            'future_mcpu': self.future_mcpu,
            'window_ms': self.window_ms,
            'free_mcpu': self.free_mcpu,
            'pending_mcpu': self.pending_mcpu,
            'live': self.live,
            'pending': self.pending,
            'inactive': self.inactive,
            'min_instances': self.min_instances,
            'max_live_instances': self.max_live_instances,
            'max_instances': self.max_instances,
            'max_new_per_loop': self.max_new_per_loop,
            'worker_cores': self.worker_cores,
            'standing_worker_cores': self.standing_worker_cores,
            'users': [v.to_avro() for v in self.users],
            'zones': [v.to_avro() for v in self.zones],
            'instances': [v.to_avro() for v in self.instances],
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> PoolScalingDecided:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            pool=d['pool'],
            requested=d['requested'],
            standing_requested=d['standing_requested'],
            deleted=d['deleted'],
            limited_by=d['limited_by'],
            paused_until=d['paused_until'],
            ready_mcpu=d['ready_mcpu'],
            demand_mcpu=d['demand_mcpu'],
            demand_truncated=d['demand_truncated'],
            future_mcpu=d['future_mcpu'],
            window_ms=d['window_ms'],
            free_mcpu=d['free_mcpu'],
            pending_mcpu=d['pending_mcpu'],
            live=d['live'],
            pending=d['pending'],
            inactive=d['inactive'],
            min_instances=d['min_instances'],
            max_live_instances=d['max_live_instances'],
            max_instances=d['max_instances'],
            max_new_per_loop=d['max_new_per_loop'],
            worker_cores=d['worker_cores'],
            standing_worker_cores=d['standing_worker_cores'],
            users=tuple(PoolWindowUser.from_avro(v) for v in d['users']),
            zones=tuple(PoolZoneWeight.from_avro(v) for v in d['zones']),
            instances=tuple(PoolInstanceChoice.from_avro(v) for v in d['instances']),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningAttemptsReported:
    """A worker's billing update (Hail's): these attempts of the batch were still running on the instance at `running_at`, so they are billed up to then. Appended every billing interval for each batch with running attempts on the instance; the attempt's MJC bills it start to end."""

    SCHEMA_NAME: ClassVar[str] = "RunningAttemptsReported"
    TOPIC: ClassVar[str] = "batch"
    KEY_FIELD: ClassVar[str | None] = 'batch_id'

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    batch_id: int
    instance_name: str
    running_at: int
    attempts: tuple[RunningAttempt, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'batch_id': self.batch_id,
            'instance_name': self.instance_name,
            'running_at': self.running_at,
            'attempts': [v.to_avro() for v in self.attempts],
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> RunningAttemptsReported:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            batch_id=d['batch_id'],
            instance_name=d['instance_name'],
            running_at=d['running_at'],
            attempts=tuple(RunningAttempt.from_avro(v) for v in d['attempts']),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerLeaderElected:
    """A scheduler took leadership with a higher epoch; lower epochs are fenced."""

    SCHEMA_NAME: ClassVar[str] = "SchedulerLeaderElected"
    TOPIC: ClassVar[str] = "control"
    KEY_FIELD: ClassVar[str | None] = None

    event_id: str
    occurred_at: int
    producer: str
    causation_id: str | None = None
    scheduler_id: str
    epoch: int

    def to_avro(self) -> dict[str, Any]:
        return {
            'event_id': self.event_id,
            'occurred_at': self.occurred_at,
            'producer': self.producer,
            'causation_id': self.causation_id,
            'scheduler_id': self.scheduler_id,
            'epoch': self.epoch,
        }

    @classmethod
    def from_avro(cls, d: dict[str, Any]) -> SchedulerLeaderElected:
        return cls(
            event_id=d['event_id'],
            occurred_at=d['occurred_at'],
            producer=d['producer'],
            causation_id=d['causation_id'],
            scheduler_id=d['scheduler_id'],
            epoch=d['epoch'],
        )


Event = AttemptAssigned | AttemptKillRequested | BatchCancelRequested | BatchCancelled | BatchCompleted | BatchCreated | BatchDeleted | BatchUpdateCommitted | BatchUpdateCreated | InstanceActivated | InstanceCreated | InstanceDeactivated | InstanceDeleted | InstanceHeartbeat | InstanceRequested | JobAttemptAccepted | JobAttemptCompleted | JobAttemptRefused | JobAttemptScheduled | JobAttemptStarted | JobBecameReady | JobCancelled | JobCompleted | JobCreated | JobCreating | JobGroupCancelRequested | JobGroupCancelled | JobGroupCreated | PoolScalingDecided | RunningAttemptsReported | SchedulerLeaderElected

EVENT_TYPES: dict[str, type[Event]] = {c.SCHEMA_NAME: c for c in (AttemptAssigned, AttemptKillRequested, BatchCancelRequested, BatchCancelled, BatchCompleted, BatchCreated, BatchDeleted, BatchUpdateCommitted, BatchUpdateCreated, InstanceActivated, InstanceCreated, InstanceDeactivated, InstanceDeleted, InstanceHeartbeat, InstanceRequested, JobAttemptAccepted, JobAttemptCompleted, JobAttemptRefused, JobAttemptScheduled, JobAttemptStarted, JobBecameReady, JobCancelled, JobCompleted, JobCreated, JobCreating, JobGroupCancelRequested, JobGroupCancelled, JobGroupCreated, PoolScalingDecided, RunningAttemptsReported, SchedulerLeaderElected)}
