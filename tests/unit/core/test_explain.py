"""Explanations: every reason code has a message that quotes the numbers a user needs."""

from __future__ import annotations

import pytest

from events.core import explain
from events.core.explain import Explanation, Reason

DETAILS = {
    Reason.BACKOFF: {"not_before_ms": 1_700_000_000_123},
    Reason.OVER_FAIR_SHARE: {"user": "alice", "pool": "standard", "share_mcpu": 2_500},
    Reason.NO_CAPACITY: {
        "pool": "highmem",
        "regions": ("us-east1",),
        "cores_mcpu": 4_000,
        "memory_bytes": 26 * 1024**3,
        "storage_gib": 20,
    },
    Reason.POOL_AT_MAX: {
        "pool": "standard",
        "regions": None,
        "cores_mcpu": 1_000,
        "memory_bytes": 1024**3,
        "storage_gib": 0,
    },
    Reason.NO_INSTANCES: {
        "pool": "standard-np",
        "regions": None,
        "cores_mcpu": 250,
        "memory_bytes": 1024**3,
        "storage_gib": 0,
    },
    Reason.JOB_PRIVATE_REQUESTED: {"machine_type": "n1-highmem-8"},
    Reason.JOB_PRIVATE_LIMIT: {"limit": 300, "machine_type": "n1-highmem-8"},
    Reason.WAITING_FOR_PARENTS: {"n_pending_parents": 3},
    Reason.CREATING: {"machine_type": "n1-standard-4"},
    Reason.NO_POOL_FITS: {"misfit": "no pool can ever run this job: it needs 4 cores"},
}
EXPECTED_FRAGMENTS = {
    Reason.BACKOFF: "not before 2023-11-14T22:13:20.123Z",
    Reason.OVER_FAIR_SHARE: "user alice has used its fair share of pool standard this cycle (2.5 cores)",
    Reason.NO_CAPACITY: "no instance in pool highmem in regions us-east1 has 4 cores, 26.0 GiB memory and 20 GiB storage free",
    Reason.POOL_AT_MAX: "maximum number of instances",
    Reason.NO_INSTANCES: "no active instance in pool standard-np",
    Reason.JOB_PRIVATE_REQUESTED: "n1-highmem-8",
    Reason.JOB_PRIVATE_LIMIT: "limited to 300 per scheduling cycle",
    Reason.WAITING_FOR_PARENTS: "waiting for 3 parent job(s)",
    Reason.CREATING: "n1-standard-4",
    Reason.NO_POOL_FITS: "no pool can ever run this job: it needs 4 cores",
}


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_message_with_its_numbers(reason):
    explanation = Explanation(batch_id=7, job_id=9, reason=reason, detail=tuple(DETAILS[reason].items()))
    assert EXPECTED_FRAGMENTS[reason] in explanation.message
    as_json = explanation.to_json()
    assert as_json["reason"] == reason.value and as_json["message"] == explanation.message


def test_helpers_for_jobs_the_matcher_never_sees():
    assert explain.waiting_for_parents(1, 2, 4).reason is Reason.WAITING_FOR_PARENTS
    assert "n1-standard-8" in explain.creating(1, 2, "n1-standard-8").message
