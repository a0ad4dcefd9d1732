"""Retry policies at the front door: each field checked on its own (400 naming it), a job's fields merged
over its batch's default, the whole checked against the job's resources and the pools; and the path for
Hail's client, whose create_job passes no unknown keys: the `squall.retry_policy` attribute."""

from __future__ import annotations

import json

import pytest

from events.catalog import RetryPolicy
from events.core.autoscale import PoolConfig
from events.core.resources import GIB, MIB
from services.front.errors import InvalidRequest
from services.front.plan import Stamp, plan_jobs
from services.front.specs import SpecRules, parse_batch, parse_job
from services.front.store import BatchRow, UpdateRow

RULES = SpecRules()
# the local stack's shape: 2-core workers of each type, preemptible and not
POOLS = tuple(PoolConfig(name=t + ("" if p else "-np"), worker_type=t, preemptible=p, worker_cores=2, storage_gib=20)
              for t in ("standard", "highcpu", "highmem") for p in (True, False))


def docker(**extra):
    return {"job_id": 1, "process": {"type": "docker", "image": "busybox", "command": ["true"]},
            "resources": {"cpu": "250m", "memory": "lowmem"}, **extra}


def plan(job_spec: dict, batch_default: dict | None = None, pools=POOLS) -> RetryPolicy | None:
    job = parse_job("bunch[0]", job_spec, RULES)
    batch = BatchRow(batch_id=1, user_name="u", billing_project="bp", token="t", attributes={}, time_created=0,
                     cancelled=False, deleted=False, n_updates=1, n_reserved_jobs=1, n_reserved_job_groups=0,
                     n_committed_jobs=0, retry_policy=batch_default)
    update = UpdateRow(batch_id=1, update_id=1, token="t", n_jobs=1, n_job_groups=0, start_job_id=1,
                       start_job_group_id=1, committed=False, time_created=0, time_committed=None)
    [created] = plan_jobs(update, batch, [job], Stamp("test", 0), pools=pools)
    return created.retry_policy


def refused(job_spec: dict, batch_default: dict | None = None) -> str:
    with pytest.raises(InvalidRequest) as caught:
        plan(job_spec, batch_default)
    return str(caught.value)


def test_a_full_policy_is_normalised():
    policy = plan(docker(retry_policy={"oom_memory_multiplier": 2, "oom_max_memory": "1Gi", "max_preemptions": 2,
                                       "retry_exit_codes": [75, 3, 75]}))
    assert policy == RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=GIB, max_preemptions=2,
                                 retry_exit_codes=(3, 75))


def test_no_policy_anywhere_is_none():
    assert plan(docker()) is None
    assert plan(docker(retry_policy={})) is None


@pytest.mark.parametrize(("policy", "field", "says"), [
    ({"oom_memory_multiplier": 1}, "oom_memory_multiplier", "greater than 1"),
    ({"oom_memory_multiplier": "2"}, "oom_memory_multiplier", "must be a number"),
    ({"oom_memory_multiplier": 2, "oom_max_memory": "lots"}, "oom_max_memory", "is not a size"),
    ({"max_preemptions": 0}, "max_preemptions", "resources.preemptible"),
    ({"max_preemptions": 2.5}, "max_preemptions", "integer"),
    ({"retry_exit_codes": [0]}, "retry_exit_codes[0]", "at least 1"),
    ({"retry_exit_codes": [256]}, "retry_exit_codes[0]", "at most 255"),
    ({"retry_exit_codes": 3}, "retry_exit_codes", "list"),
    ({"retry_on": [3]}, "retry_on", "unknown"),
])
def test_each_bad_field_is_a_400_naming_it(policy, field, says):
    message = refused(docker(retry_policy=policy))
    assert f"bunch[0].retry_policy.{field}" in message and says in message, message


@pytest.mark.parametrize(("policy", "field", "says"), [
    ({"oom_memory_multiplier": 2}, "oom_max_memory", "is needed with oom_memory_multiplier"),
    ({"oom_max_memory": "1Gi"}, "oom_memory_multiplier", "is needed with oom_max_memory"),
    ({"oom_memory_multiplier": 2, "oom_max_memory": "200Mi"}, "oom_max_memory", "not more than the 231 MiB"),
    ({"oom_memory_multiplier": 2, "oom_max_memory": "64Gi"}, "oom_max_memory", "could never run"),
])
def test_a_policy_that_could_never_work_is_a_400(policy, field, says):
    message = refused(docker(retry_policy=policy))
    assert f"bunch[0].retry_policy.{field}" in message and says in message, message


def test_max_preemptions_needs_a_non_preemptible_pool_that_holds_the_job():
    pools = tuple(p for p in POOLS if p.preemptible)
    with pytest.raises(InvalidRequest, match=r"retry_policy.max_preemptions: .*runs non-preemptible.*no pool runs "):
        plan(docker(retry_policy={"max_preemptions": 1}), pools=pools)


def test_a_job_private_machine_has_no_memory_to_grow():
    spec = docker(resources={"machine_type": "n1-standard-4"},
                  retry_policy={"oom_memory_multiplier": 2, "oom_max_memory": "64Gi"})
    assert "cannot be used with resources.machine_type" in refused(spec)


def test_the_batch_default_applies_and_a_jobs_own_fields_win_even_null():
    default = {"oom_memory_multiplier": 2.0, "oom_max_memory_bytes": GIB, "retry_exit_codes": [3]}
    assert plan(docker(), default) == RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=GIB,
                                                  retry_exit_codes=(3,))
    own = plan(docker(retry_policy={"retry_exit_codes": None, "max_preemptions": 1}), default)
    assert own == RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=GIB, max_preemptions=1,
                              retry_exit_codes=())
    # an error in the default is named as the batch's
    message = refused(docker(resources={"cpu": "1", "memory": "standard"}), default)
    assert "bunch[0].retry_policy.oom_max_memory (the batch's retry_policy)" in message


def test_the_batch_spec_takes_a_default_or_its_attribute():
    base = {"billing_project": "bp", "token": "t", "n_jobs": 1}
    given = parse_batch({**base, "retry_policy": {"oom_memory_multiplier": 2, "oom_max_memory": "8Gi"}})
    assert given.retry_policy == {"oom_memory_multiplier": 2.0, "oom_max_memory_bytes": 8 * GIB}
    attribute = json.dumps({"max_preemptions": 3})
    assert parse_batch({**base, "attributes": {"squall.retry_policy": attribute}}).retry_policy == {"max_preemptions": 3}
    with pytest.raises(InvalidRequest, match=r"batch.attributes.squall.retry_policy: must be a JSON object"):
        parse_batch({**base, "attributes": {"squall.retry_policy": "{max_preemptions: 3"}})


def test_hails_client_sets_a_jobs_policy_with_the_attribute():
    attribute = json.dumps({"oom_memory_multiplier": 2, "oom_max_memory": "512Mi", "retry_exit_codes": [42]})
    policy = plan(docker(attributes={"name": "align", "squall.retry_policy": attribute}))
    assert policy == RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=512 * MIB, retry_exit_codes=(42,))
    message = refused(docker(attributes={"squall.retry_policy": "[]"}))
    assert "bunch[0].attributes.squall.retry_policy" in message and "must be a JSON object" in message
    both = docker(retry_policy={"max_preemptions": 1}, attributes={"squall.retry_policy": attribute})
    assert "not both" in refused(both)


def test_squall_submit_sends_the_description_s_policies_as_the_front_reads_them():
    """`squall submit`'s description (events.client's BatchBuilder): a batch default and a job's own."""
    from events.client import ClientSettings, SquallClient
    from services.cli.jobs import DescriptionError, build_batch

    client = SquallClient(ClientSettings(api_url="http://127.0.0.1:9", token="t", billing_project="bp"))
    description = {"retry_policy": {"max_preemptions": 1},
                   "jobs": [{"name": "a", "image": "busybox", "command": "true", "memory": "lowmem"},
                            {"name": "b", "image": "busybox", "command": "true", "memory": "lowmem",
                             "retry_policy": {"oom_memory_multiplier": 2, "oom_max_memory": "1Gi"}}]}
    builder = build_batch(client, description)
    default = parse_batch(builder._batch_spec()).retry_policy
    assert default == {"max_preemptions": 1}
    assert [plan({**spec, "job_id": 1}, default) for spec in builder.specs] == [
        RetryPolicy(max_preemptions=1, retry_exit_codes=()),
        RetryPolicy(oom_memory_multiplier=2.0, oom_max_memory_bytes=GIB, max_preemptions=1, retry_exit_codes=())]
    with pytest.raises(DescriptionError, match="unknown top-level key 'retry_polcy'"):
        build_batch(client, {"retry_polcy": {}, "jobs": []})
