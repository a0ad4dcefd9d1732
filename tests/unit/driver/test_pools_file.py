"""The pools file and the fleet options of `squall up`: every new field is read, every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.local_fleet import ZonesError, parse_zones
from deploy.stack import StackError, _check_fleet_options
from events.pools_file import PoolConfigError, load_pools

GOOD = """
pools:
  - name: standard
    worker_type: standard
    preemptible: true
    worker_cores: 16
    min_instances: 1
    standing_worker_cores: 4
    standing_worker_idle_time_ms: 600000
    max_live_instances: 8
    max_instances: 10
    scheduling_window_ms: 60000
  - {name: highmem-np, worker_type: highmem, preemptible: false}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pools.yaml"
    path.write_text(text)
    return path


def test_every_autoscaling_field_is_read(tmp_path: Path) -> None:
    standard, highmem = load_pools(write(tmp_path, GOOD), region="local")
    assert (standard.min_instances, standard.standing_cores, standard.standing_worker_idle_time_ms) == (1, 4, 600_000)
    assert (standard.live_limit, standard.max_instances, standard.scheduling_window_ms) == (8, 10, 60_000)
    assert (highmem.live_limit, highmem.standing_cores, highmem.region) == (6250, 16, "local")


@pytest.mark.parametrize(("pool", "message"), [
    ("{name: s, worker_type: standard, preemptible: true, min_instances: 3, max_live_instances: 2}",
     "pools[0] (s): need 0 <= min_instances <= max_live_instances <= max_instances, got 3 <= 2 <= 6250"),
    ("{name: s, worker_type: standard, preemptible: true, max_live_instances: 20, max_instances: 10}",
     "got 0 <= 20 <= 10"),
    ("{name: s, worker_type: standard, preemptible: true, worker_cores: 4, standing_worker_cores: 8}",
     "standing_worker_cores must be between 1 and worker_cores (4), not 8"),
    ("{name: s, worker_type: standard, preemptible: true, scheduling_window_ms: 10}",
     "scheduling_window_ms must be at least 1000"),
    ("{name: s, worker_type: standard, preemptible: true, max_live_instances: lots}",
     "pools[0].max_live_instances: expected int, got 'lots'"),
    ("{name: s, worker_type: standard, preemptible: true, min_instances: null}",
     "pools[0].min_instances: must be set"),
    ("{name: s, worker_type: standard, preemptible: true, standing_cores: 2}",
     "unknown field 'standing_cores'"),
    ("{name: s, worker_type: standard, preemptible: yes please}", "pools[0].preemptible: expected bool"),
])
def test_mistakes_name_the_pool_and_the_field(tmp_path: Path, pool: str, message: str) -> None:
    with pytest.raises(PoolConfigError, match=None) as caught:
        load_pools(write(tmp_path, f"pools:\n  - {pool}\n"))
    assert message in str(caught.value)


def test_local_zones_and_their_capacities() -> None:
    assert parse_zones("local-a, local-b:2,") == {"local-a": None, "local-b": 2}
    assert parse_zones("") == {}
    for bad in ("a,a", "a:two", ":3"):
        with pytest.raises(ZonesError, match="--zones"):
            parse_zones(bad)


def test_squall_up_refuses_bad_fleet_options_before_starting_anything(tmp_path: Path) -> None:
    _check_fleet_options(write(tmp_path, GOOD), "local-a,local-b:1")
    with pytest.raises(StackError, match="min_instances <= max_live_instances"):
        _check_fleet_options(write(tmp_path, "pools:\n  - {name: s, worker_type: standard, preemptible: true, "
                                             "min_instances: 2, max_instances: 1}\n"), None)
    with pytest.raises(StackError, match="capacity of b must be a whole number"):
        _check_fleet_options(None, "a,b:x")
