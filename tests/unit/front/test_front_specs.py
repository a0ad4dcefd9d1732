"""Request validation: every malformed or unknown field is refused with a message naming it."""

from __future__ import annotations

import json

import pytest

from services.front.errors import InvalidRequest
from services.front.specs import SpecRules, parse_batch, parse_groups, parse_job, parse_jobs, parse_update

RULES = SpecRules(supported_regions=("us-central1", "us-east1"))


def docker(job_id: int = 1, **extra):
    return {"job_id": job_id, "process": {"type": "docker", "image": "busybox", "command": ["true"]}, **extra}


def test_a_minimal_docker_job_gets_hails_defaults():
    job = parse_job("bunch[0]", docker(), RULES)
    assert job.always_run is False and job.n_max_attempts == 20
    assert job.absolute_job_group_id == 0 and job.in_update_job_group_id is None
    assert job.spec.network == "public" and job.spec.always_copy_output is True
    assert (job.spec.resources.cores_mcpu, job.spec.resources.storage_gib) == (1000, 0)
    accepted = json.loads(job.spec_json)
    assert accepted["n_max_attempts"] == 20 and accepted["network"] == "public"


def test_full_job_spec_as_the_hail_client_sends_it():
    job = parse_job("bunch[0]", docker(
        2, always_run=True, n_max_attempts=3, always_copy_output=False, absolute_parent_ids=[1],
        in_update_parent_ids=[1], env=[{"name": "A", "value": "b"}], port=8080, timeout=30,
        resources={"cpu": "250m", "memory": "lowmem", "storage": "10Gi"}, attributes={"name": "x"},
        input_files=[{"from": "gs://in-bucket/a", "to": "/io/a"}],
        output_files=[{"from": "/io/b", "to": "gs://out-bucket/b"}],
        regions=["us-central1", "us-east1"], network="private", user_code="print(1)", mount_tokens=False), RULES)
    assert job.spec.env[0].name == "A" and job.spec.port == 8080 and job.spec.timeout_s == 30.0
    assert job.spec.resources.cores_mcpu == 250 and job.spec.resources.worker_type == "highcpu"
    assert job.spec.input_files[0].src == "gs://in-bucket/a" and job.spec.regions == ("us-central1", "us-east1")
    assert job.attributes == {"name": "x"} and job.always_run and job.n_max_attempts == 3


def test_legacy_keys_are_rewritten():
    job = parse_job("j", {"job_id": 2, "command": ["ls"], "image": "debian", "parent_ids": [1]}, RULES)
    assert job.spec.image == "debian" and job.in_update_parent_ids == (1,)


def test_jvm_jobs():
    job = parse_job("j", {"job_id": 1, "process": {"type": "jvm", "command": ["Main"], "profile": False,
                                                   "jar_spec": {"type": "jar_url", "value": "gs://jars/a.jar"}}},
                    RULES)
    assert job.spec.process_type == "jvm" and job.spec.jar_url == "gs://jars/a.jar"


@pytest.mark.parametrize(("spec", "field", "says"), [
    ({"job_id": 1}, "j.process", "required"),
    (docker(bogus=1), "j.bogus", "unknown field"),
    (docker(job_id="1"), "j.job_id", "integer"),
    (docker(job_id=0), "j.job_id", "at least 1"),
    (docker(always_run="yes"), "j.always_run", "true or false"),
    (docker(n_max_attempts=0), "j.n_max_attempts", "at least 1"),
    (docker(resources={"cpu": "3"}), "j.resources.cpu", "power of two"),
    (docker(resources={"memory": "lots"}), "j.resources.memory", "size"),
    (docker(resources={"storage": "5Gi"}), "j.resources.storage", "10Gi"),
    (docker(resources={"gpu": 1}), "j.resources.gpu", "unknown field"),
    (docker(resources={"machine_type": "n1-standard-4", "cpu": "1"}), "j.resources.cpu", "machine_type"),
    (docker(network="none"), "j.network", "public, private"),
    (docker(timeout=0), "j.timeout", "positive"),
    (docker(timeout="10"), "j.timeout", "number"),
    (docker(port=70000), "j.port", "at most 65535"),
    (docker(regions=[]), "j.regions", "must not be empty"),
    (docker(regions=["mars"]), "j.regions[0]", "not supported"),
    (docker(env=[{"name": "A"}]), "j.env[0].value", "required"),
    (docker(env={"A": "b"}), "j.env", "list"),
    (docker(input_files=[{"from": "a"}]), "j.input_files[0].to", "required"),
    (docker(attributes={"a": 1}), "j.attributes.a", "string"),
    (docker(attributes={"a": "x\x00"}), "j.attributes.a", "NUL"),
    (docker(env=[{"name": "A", "value": "\x00"}]), "j.env[0].value", "NUL"),
    (docker(env=[{"name": "", "value": "v"}]), "j.env[0].name", "empty"),
    ({"job_id": 1, "process": {"type": "docker", "image": "a", "command": ["ok", 3]}}, "j.process.command[1]",
     "string"),
    (docker(absolute_parent_ids=[0]), "j.absolute_parent_ids[0]", "at least 1"),
    (docker(in_update_parent_ids=[1]), "j.in_update_parent_ids[0]", "earlier job"),
    (docker(in_update_parent_ids=["x"]), "j.in_update_parent_ids[0]", "integer"),
    (docker(absolute_job_group_id=0, in_update_job_group_id=1), "j", "not both"),
    (docker(secrets=[{"name": "s"}]), "j.secrets", "not supported"),
    (docker(cloudfuse=[{"bucket": "b"}]), "j.cloudfuse", "not supported"),
    (docker(service_account={"name": "x"}), "j.service_account", "ci"),
    (docker(unconfined=True), "j.unconfined", "ci"),
    ({"job_id": 1, "process": {"type": "docker", "image": "", "command": []}}, "j.process.image", "empty"),
    ({"job_id": 1, "process": {"type": "docker", "image": "a", "command": "ls"}}, "j.process.command", "list"),
    ({"job_id": 1, "process": {"type": "rkt"}}, "j.process.type", "docker"),
    ({"job_id": 1, "process": {"type": "jvm", "command": [], "jar_spec": {"type": "git_revision", "value": "x"}}},
     "j.process.jar_spec.type", "jar_url"),
    ({"job_id": 1, "process": {"type": "jvm", "command": [], "jar_spec": {"type": "jar_url", "value": "x"}},
      "input_files": [{"from": "a", "to": "b"}]}, "j.input_files", "JVM"),
    ({"job_id": 1, "process": {"type": "jvm", "command": [], "jar_spec": {"type": "jar_url", "value": "x"}},
      "resources": {"cpu": "0.5"}}, "j.resources.cpu", "JVM"),
    ([1], "j", "object"),
])
def test_bad_job_fields_are_named(spec, field, says):
    with pytest.raises(InvalidRequest) as err:
        parse_job("j", spec, RULES)
    assert err.value.field == field
    assert says in str(err.value)


def test_job_ids_in_a_bunch_must_be_contiguous():
    with pytest.raises(InvalidRequest) as err:
        parse_jobs([docker(1), docker(3)], RULES)
    assert err.value.field == "bunch[1].job_id" and "contiguous" in str(err.value)


@pytest.mark.parametrize(("body", "field"), [
    ({"token": "t", "n_jobs": 1}, "batch.billing_project"),
    ({"billing_project": "p", "n_jobs": 1}, "batch.token"),
    ({"billing_project": "p", "token": "t"}, "batch.n_jobs"),
    ({"billing_project": "p", "token": "t", "n_jobs": -1}, "batch.n_jobs"),
    ({"billing_project": "p", "token": "t", "n_jobs": 1, "cancel_after_n_failures": 0},
     "batch.cancel_after_n_failures"),
    ({"billing_project": "p", "token": "t", "n_jobs": 1, "attributes": {"a": None}}, "batch.attributes.a"),
    ({"billing_project": "p", "token": "t", "n_jobs": 1, "extra": 1}, "batch.extra"),
    ("x", "batch"),
])
def test_bad_batch_specs(body, field):
    with pytest.raises(InvalidRequest) as err:
        parse_batch(body)
    assert err.value.field == field


def test_batch_and_update_specs_parse():
    b = parse_batch({"billing_project": "p", "token": "t", "n_jobs": 2, "attributes": {"name": "n"},
                     "callback": "http://x", "cancel_after_n_failures": 1})
    assert (b.n_jobs, b.n_job_groups, b.attributes, b.cancel_after_n_failures) == (2, 0, {"name": "n"}, 1)
    u = parse_update({"token": "t", "n_jobs": 0, "n_job_groups": 2})
    assert (u.n_jobs, u.n_job_groups) == (0, 2)
    with pytest.raises(InvalidRequest) as err:
        parse_update({"token": "t"})
    assert err.value.field == "update.n_jobs"


def test_group_specs():
    groups = parse_groups([{"job_group_id": 1}, {"job_group_id": 2, "in_update_parent_id": 1,
                                                  "cancel_after_n_failures": 2}])
    assert groups[0].absolute_parent_id == 0 and groups[1].in_update_parent_id == 1
    for bad, field in [([{"job_group_id": 1, "in_update_parent_id": 1}], "job_groups[0].in_update_parent_id"),
                       ([{"job_group_id": 1, "absolute_parent_id": 0, "in_update_parent_id": 1}], "job_groups[0]"),
                       ([{"job_group_id": 1, "x": 1}], "job_groups[0].x"),
                       ([{"job_group_id": 2}, {"job_group_id": 1}], "job_groups[1].job_group_id")]:
        with pytest.raises(InvalidRequest) as err:
            parse_groups(bad)
        assert err.value.field == field
