"""Hail's resource rules (front_end/validate.py, _create_jobs), table-driven."""

from __future__ import annotations

import pytest

from events.core.resources import (
    GIB,
    MIB,
    ResourceDefaults,
    ResourceError,
    parse_cpu_mcpu,
    parse_size_bytes,
    pool_name,
    resolve_resources,
)


@pytest.mark.parametrize(
    ("text", "mcpu"),
    [
        ("250m", 250),
        ("500m", 500),
        ("0.25", 250),
        ("0.5", 500),
        ("1", 1000),
        ("2", 2000),
        ("16", 16000),
        (".25", 250),
        (1, 1000),
        (0.5, 500),
        ("4000m", 4000),
    ],
)
def test_cpu_powers_of_two_quarter_cores_are_accepted(text, mcpu):
    assert parse_cpu_mcpu(text) == mcpu


@pytest.mark.parametrize(
    "text", ["3", "0.3", "100m", "0", "-1", "1.5", "750m", "abc", "", "1 core", True, None]
)
def test_cpu_other_amounts_are_rejected_naming_the_field(text):
    with pytest.raises(ResourceError) as caught:
        parse_cpu_mcpu(text)
    assert caught.value.field == "resources.cpu"
    assert str(caught.value).startswith("resources.cpu: ")


def test_cpu_error_says_what_is_allowed():
    with pytest.raises(
        ResourceError, match=r"'3' is not a power of two times 0.25 core; use e.g. 0.25, 0.5, 1, 2"
    ):
        resolve_resources({"cpu": "3"})


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Gi", GIB),
        ("1G", 10**9),
        ("1GiB", GIB),
        ("1GB", 10**9),
        ("512Mi", 512 * MIB),
        ("1.5Gi", 3 * GIB // 2),
        ("1000", 1000),
        ("2Ki", 2048),
        ("1Ti", 1024 * GIB),
        ("+4Mi", 4 * MIB),
    ],
)
def test_sizes_use_si_and_binary_prefixes(text, size):
    assert parse_size_bytes("resources.memory", text) == size


def test_defaults_are_one_standard_core_no_storage_preemptible():
    resources = resolve_resources(None)
    assert (resources.cores_mcpu, resources.worker_type, resources.storage_gib, resources.preemptible) == (
        1000,
        "standard",
        0,
        True,
    )
    assert resources.memory_bytes == 3840 * MIB
    assert resources.machine_type is None


@pytest.mark.parametrize(
    ("spec", "cores_mcpu", "worker_type", "memory_mib"),
    [
        ({"cpu": "250m"}, 250, "standard", 960),
        ({"cpu": "0.25", "memory": "lowmem"}, 250, "highcpu", 231),
        ({"cpu": "1", "memory": "lowmem"}, 1000, "highcpu", 924),
        ({"cpu": "2", "memory": "highmem"}, 2000, "highmem", 2 * 6656),
        ({"cpu": "16", "memory": "standard"}, 16000, "standard", 16 * 3840),
        # a size raises cores until they cover it, rounds to a power of two, picks the cheapest type
        ({"cpu": "250m", "memory": "1Gi"}, 250, "highmem", 1664),
        ({"memory": "10Gi"}, 2000, "highmem", 2 * 6656),
        ({"cpu": "4", "memory": "1Gi"}, 4000, "highcpu", 4 * 924),
        ({"memory": "100Gi"}, 16000, "highmem", 16 * 6656),
        ({"cpu": "8", "memory": "20Gi"}, 8000, "standard", 8 * 3840),
    ],
)
def test_cores_and_memory_follow_the_worker_type(spec, cores_mcpu, worker_type, memory_mib):
    resources = resolve_resources(spec)
    assert (resources.cores_mcpu, resources.worker_type) == (cores_mcpu, worker_type)
    assert resources.memory_bytes == pytest.approx(memory_mib * MIB, rel=0.002)
    assert (
        resources.memory_bytes
        == cores_mcpu * {"highcpu": 924, "standard": 3840, "highmem": 6656}[worker_type] * MIB // 1000
    )


@pytest.mark.parametrize(
    ("text", "gib"), [("0", 0), ("0Gi", 0), ("10Gi", 10), ("100G", 94), ("64Ti", 65536), ("10.5Gi", 11)]
)
def test_storage_zero_or_ten_gib_to_sixty_four_tib(text, gib):
    assert resolve_resources({"storage": text}).storage_gib == gib


@pytest.mark.parametrize("text", ["1Gi", "9Gi", "65Ti", "lots"])
def test_storage_outside_the_range_is_rejected(text):
    with pytest.raises(ResourceError) as caught:
        resolve_resources({"storage": text})
    assert caught.value.field == "resources.storage"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"cpu": "32"}, "resources.cpu"),
        ({"memory": "200Gi"}, "resources.memory"),
        ({"memory": "lots"}, "resources.memory"),
        ({"cpu": "1", "machine_type": "n1-standard-4"}, "resources.cpu"),
        ({"memory": "standard", "machine_type": "n1-standard-4"}, "resources.memory"),
        ({"machine_type": "big-one"}, "resources.machine_type"),
        ({"preemptible": "yes"}, "resources.preemptible"),
        ({"gpus": 1}, "resources.gpus"),
    ],
)
def test_invalid_resources_name_the_field(spec, field):
    with pytest.raises(ResourceError) as caught:
        resolve_resources(spec)
    assert caught.value.field == field


def test_machine_type_is_job_private_with_its_own_cores_and_memory():
    resources = resolve_resources({"machine_type": "n1-highmem-8", "storage": "100Gi", "preemptible": False})
    assert resources.machine_type == "n1-highmem-8"
    assert (resources.cores_mcpu, resources.memory_bytes, resources.storage_gib) == (
        8000,
        8 * 6656 * MIB,
        100,
    )
    assert (resources.worker_type, resources.preemptible) == ("highmem", False)


def test_defaults_can_be_changed_by_the_operator():
    defaults = ResourceDefaults(cpu="2", memory="highmem", storage="20Gi", worker_cores=8)
    resources = resolve_resources({}, defaults)
    assert (resources.cores_mcpu, resources.worker_type, resources.storage_gib) == (2000, "highmem", 20)
    with pytest.raises(ResourceError, match="8-core worker"):
        resolve_resources({"cpu": "16"}, defaults)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cpu": "0.5"}, "1, 2, 4 or 8"),
        ({"memory": "lowmem"}, "lowmem"),
        ({"machine_type": "n1-standard-4"}, "machine_type"),
    ],
)
def test_jvm_jobs_have_narrower_rules(spec, message):
    with pytest.raises(ResourceError, match=message):
        resolve_resources(spec, jvm=True)
    assert resolve_resources({"cpu": "4"}, jvm=True).cores_mcpu == 4000


def test_pool_names_follow_worker_type_and_preemptibility():
    assert pool_name("standard", True) == "standard"
    assert pool_name("highmem", False) == "highmem-np"
