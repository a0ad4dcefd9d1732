"""Builders for worker test inputs."""

from __future__ import annotations

import itertools

from events.catalog import AttemptAssigned, AttemptKillRequested, EnvVar, FileCopy, JobSpec, Resources

_job_ids = itertools.count(1)
MIB = 1 << 20


def assignment(instance_name: str, command: tuple[str, ...] = ("true",), *,
               image: str = "localhost/busybox:latest", batch_id: int = 1, job_id: int | None = None,
               attempt_id: str = "a1", cores_mcpu: int = 250, memory_bytes: int = 128 * MIB, storage_gib: int = 0,
               timeout_s: float | None = None, network: str = "none", env: dict[str, str] | None = None,
               input_files: list[tuple[str, str]] = (), output_files: list[tuple[str, str]] = (),
               always_copy_output: bool = False, process_type: str = "docker",
               jar_url: str | None = None) -> AttemptAssigned:
    job_id = job_id if job_id is not None else next(_job_ids)
    spec = JobSpec(
        process_type=process_type, image=image, command=command, jar_url=jar_url,
        env=tuple(EnvVar(name=k, value=v) for k, v in (env or {}).items()),
        input_files=tuple(FileCopy(src=s, dst=d) for s, d in input_files),
        output_files=tuple(FileCopy(src=s, dst=d) for s, d in output_files),
        always_copy_output=always_copy_output, timeout_s=timeout_s, network=network,
        resources=Resources(cores_mcpu=cores_mcpu, memory_bytes=memory_bytes, storage_gib=storage_gib,
                            preemptible=True, worker_type="standard"))
    return AttemptAssigned(
        event_id=f"assign-{batch_id}-{job_id}-{attempt_id}", occurred_at=1_700_000_000_000, producer="test",
        instance_name=instance_name, batch_id=batch_id, job_id=job_id, attempt_id=attempt_id, job_group_id=0,
        user="test", spec=spec, cores_mcpu=cores_mcpu, memory_bytes=memory_bytes, storage_gib=storage_gib)


def kill(a: AttemptAssigned) -> AttemptKillRequested:
    return AttemptKillRequested(
        event_id=f"kill-{a.batch_id}-{a.job_id}-{a.attempt_id}", occurred_at=1_700_000_000_000, producer="test",
        instance_name=a.instance_name, batch_id=a.batch_id, job_id=a.job_id, attempt_id=a.attempt_id,
        reason="cancelled")
