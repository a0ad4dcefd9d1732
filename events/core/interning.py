"""Share the parts of job specs that repeat across a batch's jobs, to keep queued jobs small.

Every decoded JobCreated carries its own copies of "docker", "public", the image name and an
equal Resources record. A batch's jobs mostly share them, so the state keeps one copy of each
(~300 bytes saved per job; tests/bench/bench_core.py measures the result). Commands and env
differ per job and are kept as they are.
"""

from __future__ import annotations

from typing import Any

from events.catalog import JobSpec, RetryPolicy


class SpecInterner:
    """Maps equal values to one shared instance, per batch (no global state in the core)."""

    __slots__ = ("_shared",)

    def __init__(self) -> None:
        self._shared: dict[Any, Any] = {}

    def _one(self, value: Any) -> Any:
        return self._shared.setdefault(value, value)

    def share(self, spec: JobSpec) -> JobSpec:
        one = self._one
        return JobSpec(process_type=one(spec.process_type), image=one(spec.image), command=spec.command,
                       jar_url=one(spec.jar_url), env=spec.env, input_files=spec.input_files,
                       output_files=spec.output_files, always_copy_output=spec.always_copy_output,
                       timeout_s=spec.timeout_s, network=one(spec.network), resources=one(spec.resources),
                       regions=one(spec.regions), port=spec.port)

    def share_policy(self, policy: RetryPolicy | None) -> RetryPolicy | None:
        """A batch's jobs mostly carry its default retry policy: one copy."""
        return None if policy is None else self._one(policy)
