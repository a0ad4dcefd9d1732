"""Which existing rows the fold reads for a batch of ops: the sink loads exactly these first."""

from __future__ import annotations

from collections.abc import Iterable

from projections.readmodel import ops
from projections.readmodel.fold import Key
from projections.readmodel.tables import ATTEMPTS, BATCH_UPDATES, BATCHES, INSTANCES, JOBS

GROUPS_OF_BATCH = "job_groups_of_batch"  # the batches whose every job group is needed (ancestors)


def keys_to_load(op_list: Iterable[ops.Op]) -> dict[str, set[Key]]:
    """Per table, the keys of the rows `ReadModel.apply` will read for these ops, for the sink to
    load before folding; GROUPS_OF_BATCH holds batch ids whose every group is needed."""
    batches: set[Key] = set()
    updates: set[Key] = set()
    jobs: set[Key] = set()
    attempts: set[Key] = set()
    instances: set[Key] = set()
    for op in op_list:
        kind = type(op)
        if kind is ops.RecordAudit or kind is ops.RecordPoolDecision:
            continue
        if kind is ops.UpsertInstance:
            instances.add((op.name,))  # type: ignore[union-attr]
            continue
        b = op.batch_id  # type: ignore[union-attr]
        batches.add((b,))
        if kind is ops.CreateUpdate or kind is ops.CommitUpdate or kind is ops.CreateJob:
            updates.add((b, op.update_id))  # type: ignore[union-attr]
        job_id = getattr(op, "job_id", None)
        if job_id is not None:
            jobs.add((b, job_id))
            attempt_id = op.after_attempt_id if kind is ops.MarkJobReady else getattr(op, "attempt_id", None)  # type: ignore[union-attr]
            if attempt_id is not None:  # a retry writes its decision on the attempt it retries
                attempts.add((b, job_id, attempt_id))
    return {BATCHES.name: batches, GROUPS_OF_BATCH: batches, BATCH_UPDATES.name: updates, JOBS.name: jobs,
            ATTEMPTS.name: attempts, INSTANCES.name: instances}
