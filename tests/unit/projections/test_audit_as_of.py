"""The audit as-of argument, and the as-of filter over audit entries."""

from __future__ import annotations

import pytest

from projections.audit import AsOf, AuditEntry, iso, parse_as_of


def entry(offset: int, occurred_at: int) -> AuditEntry:
    return AuditEntry(batch_id=1, job_id=None, topic="t", partition=0, offset=offset, event_type="BatchCreated",
                      event_id="e", occurred_at=occurred_at, causation_id=None, producer="p", attempt_id=None)


def test_small_numbers_are_offsets_large_ones_and_iso_strings_are_times() -> None:
    assert parse_as_of("1234") == AsOf(offset=1234)
    assert parse_as_of("1764075600000") == AsOf(time_ms=1_764_075_600_000)
    assert parse_as_of("2025-11-25T13:00:00Z") == AsOf(time_ms=1_764_075_600_000)
    assert parse_as_of("2025-11-25T13:00:00") == AsOf(time_ms=1_764_075_600_000)  # naive means UTC


def test_a_bad_value_says_what_is_accepted() -> None:
    with pytest.raises(ValueError, match="log offset"):
        parse_as_of("yesterday")


def test_includes_up_to_and_including_the_point() -> None:
    assert AsOf(offset=5).includes(entry(5, 0)) and not AsOf(offset=5).includes(entry(6, 0))
    assert AsOf(time_ms=100).includes(entry(9, 100)) and not AsOf(time_ms=100).includes(entry(1, 101))


def test_iso_has_milliseconds_and_z() -> None:
    assert iso(1_764_075_600_123) == "2025-11-25T13:00:00.123Z"
    assert iso(None) == "-"


def test_decision_words_say_why_an_attempt_was_retried_and_with_what() -> None:
    from events import catalog as ev
    from projections.audit import DecisionWords

    env = {"occurred_at": 1, "producer": "p", "batch_id": 1, "job_id": 2}
    words = DecisionWords()
    assert words(ev.JobAttemptAccepted(event_id="a", **env, attempt_id="x1", instance_name="i1", state="Running",
                                       scheduler_epoch=1, cores_mcpu=250, memory_bytes=231 * 2**20, storage_gib=0)) \
        == "accepted (Running) on i1: 250 mCPU, 231 MiB, 0 GiB storage"
    assert words(ev.JobAttemptCompleted(event_id="c", **env, attempt_id="x1", instance_name="i1", outcome="Failed",
                                        exit_code=137, failure_cause="out_of_memory", out_of_memory=True,
                                        ended_at=2, steps=())) == "ended Failed (out_of_memory), exit code 137"
    retry = ev.JobBecameReady(event_id="r", **env, after_attempt_id="x1", reason="retry",
                              retry_rule="oom_memory_multiplier", retry_cause="out_of_memory",
                              memory_bytes=462 * 2**20)
    assert words(retry) == ("retry (oom_memory_multiplier): out of memory at 231 MiB: retried at once with 462 MiB "
                            "(retry_policy.oom_memory_multiplier)")
    assert words(ev.JobBecameReady(event_id="p", **env, reason="parents_complete")) is None
