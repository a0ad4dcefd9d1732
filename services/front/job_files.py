"""Job files: what a job may name in input_files, output_files and a JVM jar_url, checked at submit.

Two checks, both 400s that name the job and the field:
- the shape (`check_job_files`, called by services/front/specs.py while parsing): the object side
  of every copy is a gs://BUCKET/OBJECT URL, the container side a path under /io. Absolute host
  paths and file:// URLs are refused for every user, operators included: host paths are never a
  job's business.
- access (`FileAccess.check`, called by services/front/submission.py with the batch's billing
  project): every bucket named must be granted to the user or to the billing project
  (services/front/buckets.py), squall's own bucket never is, and with real GCS the user must have
  credentials on file (services/front/credentials.py), which are published for the workers here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from events.catalog import FileCopy, JobSpec
from events.objectstore import InvalidObjectName, ObjectStore, parse_gs_url
from services.front import buckets, credentials
from services.front.errors import InvalidRequest
from services.front.locality import BucketLocations

IO = PurePosixPath("/io")
DEFAULT_SYSTEM_BUCKET = "squall-system"


def _gs_problem(url: str) -> str | None:
    if url.startswith("file:") or url.startswith("/") or url.startswith("~"):
        return (f"{url!r} names a file on squall's machines, which no job may read or write: "
                "job files must be gs://BUCKET/OBJECT URLs (absolute paths and file:// are refused)")
    try:
        parse_gs_url(url)
    except InvalidObjectName as exc:
        return f"job files must be gs://BUCKET/OBJECT URLs: {exc}"
    return None


def _io_problem(path: str) -> str | None:
    p = PurePosixPath(path)
    rel = p if not p.is_absolute() else None
    if p.is_absolute():
        try:
            rel = p.relative_to(IO)
        except ValueError:
            return f"{path!r} must be a path under /io, where the job's files are inside its container"
    if rel is not None and ".." in rel.parts:
        return f"{path!r}: '..' is not allowed"
    return None


def check_job_files(field: str, job_id: int, inputs: Sequence[FileCopy], outputs: Sequence[FileCopy],
                    jar_url: str | None) -> None:
    """Refuse anything but gs:// objects on one side and /io paths on the other (400 naming job and field)."""
    for kind, copies, remote, local in (("input_files", inputs, "from", "to"),
                                        ("output_files", outputs, "to", "from")):
        for i, c in enumerate(copies):
            remote_value, local_value = (c.src, c.dst) if remote == "from" else (c.dst, c.src)
            problem = _gs_problem(remote_value)
            if problem:
                raise InvalidRequest(f"{field}.{kind}[{i}].{remote}", f"job {job_id}: {problem}")
            problem = _io_problem(local_value)
            if problem:
                raise InvalidRequest(f"{field}.{kind}[{i}].{local}", f"job {job_id}: {problem}")
    if jar_url is not None:
        problem = _gs_problem(jar_url)
        if problem:
            raise InvalidRequest(f"{field}.process.jar_spec.value", f"job {job_id}: {problem}")


def named_buckets(spec: JobSpec) -> Iterator[tuple[str, str]]:
    """(bucket, field relative to the job) for every gs:// URL the job names (already shape-checked)."""
    for i, c in enumerate(spec.input_files):
        yield parse_gs_url(c.src).bucket, f"input_files[{i}].from"
    for i, c in enumerate(spec.output_files):
        yield parse_gs_url(c.dst).bucket, f"output_files[{i}].to"
    if spec.jar_url:
        yield parse_gs_url(spec.jar_url).bucket, "process.jar_spec.value"


@dataclass
class FileAccess:
    """Who may name which bucket. `store` set means real GCS: users need their own credentials,
    published to squall's bucket (`system_bucket`) for the workers."""

    system_bucket: str = DEFAULT_SYSTEM_BUCKET
    store: ObjectStore | None = None
    # data locality (services/front/locality.py): where buckets are, and refuse | warn | off
    locations: BucketLocations | None = field(default=None, compare=False)
    locality: str = "refuse"

    async def check(self, conn: Any, user: str, billing_project: str, specs: Sequence[tuple[int, JobSpec]],
                    field: str = "bunch") -> None:
        """`specs`: (index in the request, spec) of each job; raises InvalidRequest naming the bucket."""
        named = [(i, bucket, where) for i, spec in specs for bucket, where in named_buckets(spec)]
        if not named:
            return  # most jobs copy no files: no query
        allowed = await buckets.granted_buckets(conn, user, billing_project)
        for i, bucket, where in named:
            if bucket == self.system_bucket:
                raise InvalidRequest(f"{field}[{i}].{where}", f"bucket {bucket!r} is squall's own and cannot be "
                                                              "used for job files")
            if bucket not in allowed:
                raise InvalidRequest(f"{field}[{i}].{where}", (
                    f"bucket {bucket!r} is not granted to user {user!r} or billing project {billing_project!r}; "
                    f"an operator grants it with `squall bucket grant {bucket} --user {user}` "
                    f"(or --billing-project {billing_project})"))
        if self.store is not None:
            await credentials.ensure_published(conn, self.store, self.system_bucket, user)
