"""Cost: Hail's msec_mcpu, the price table and its YAML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.cost import (
    AttemptUsage,
    PriceTable,
    PriceTableError,
    add_breakdown,
    billed_duration_ms,
    cost_breakdown,
    msec_mcpu,
)


def test_msec_mcpu_is_milliseconds_times_mcpu_as_in_hail() -> None:
    usage = AttemptUsage(duration_ms=2_000, cores_mcpu=250, memory_bytes=0, storage_gib=0, preemptible=True)
    assert msec_mcpu(usage) == 500_000


def test_billed_duration_needs_both_ends_and_never_goes_negative() -> None:
    assert billed_duration_ms(None, 10) == 0
    assert billed_duration_ms(5, None) == 0
    assert billed_duration_ms(10, 5) == 0
    assert billed_duration_ms(5, 10) == 5


def test_breakdown_prices_each_resource_with_the_preemptible_rate() -> None:
    prices = PriceTable(cpu_core_hour=10, cpu_core_hour_preemptible=1, memory_gib_hour=20,
                        memory_gib_hour_preemptible=2, storage_gib_hour=30, storage_gib_hour_preemptible=3)
    hour = 3_600_000
    spot = AttemptUsage(duration_ms=hour, cores_mcpu=2000, memory_bytes=4 * 1024**3, storage_gib=10, preemptible=True)
    assert cost_breakdown(spot, prices) == {"cpu/preemptible": 2.0, "memory/preemptible": 8.0,
                                            "storage/preemptible": 30.0}
    regular = AttemptUsage(duration_ms=hour // 2, cores_mcpu=1000, memory_bytes=0, storage_gib=0, preemptible=False)
    assert cost_breakdown(regular, prices) == {"cpu/nonpreemptible": 5.0}


def test_add_breakdown_sums_per_resource_in_sorted_order() -> None:
    total = add_breakdown({"memory": 1.0}, {"cpu": 2.0, "memory": 0.5})
    assert total == {"cpu": 2.0, "memory": 1.5} and list(total) == ["cpu", "memory"]


def test_price_table_from_yaml_overrides_some_prices(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu_core_hour: 0.05\nmemory_gib_hour_preemptible: 0\n")
    prices = PriceTable.from_yaml(path)
    assert prices.cpu_core_hour == 0.05 and prices.memory_gib_hour_preemptible == 0.0
    assert prices.storage_gib_hour == PriceTable().storage_gib_hour


@pytest.mark.parametrize("text, message", [
    ("cpu_per_hour: 1\n", "unknown price"),
    ("cpu_core_hour: -1\n", "non-negative"),
    ("cpu_core_hour: cheap\n", "non-negative"),
    ("- 1\n", "mapping"),
])
def test_price_table_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceTableError, match=message):
        PriceTable.from_yaml(path)
