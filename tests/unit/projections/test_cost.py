"""Cost: Hail's resources and units, integer usage, pricing, accrual while running, the price table."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.cost import PriceTable, PriceTableError, Pricing, accrued_ms, add_usage

HOUR = 3_600_000


def test_an_attempt_holds_hails_resources_in_hails_units() -> None:
    pricing = Pricing(PriceTable())
    assert pricing.quantities(2000, 4 * 1024**3, 10, True) == (
        ("compute/n1-preemptible/1", 2000),         # mCPU
        ("disk/local-ssd/preemptible/1", 10 * 1024),  # MiB
        ("memory/n1-preemptible/1", 4096),          # MiB
        ("service-fee/1", 2000))                    # mCPU
    assert pricing.quantities(250, 0, 0, False) == (("compute/n1-nonpreemptible/1", 250), ("service-fee/1", 250))
    family = Pricing(PriceTable(machine_family="n2"))
    assert family.quantities(1000, 1024**2, 0, False)[:2] == (("compute/n2-nonpreemptible/1", 1000),
                                                              ("memory/n2-nonpreemptible/1", 1))


def test_each_resource_is_priced_at_its_own_rate() -> None:
    prices = PriceTable(cpu_core_hour=10, cpu_core_hour_preemptible=1, memory_gib_hour=20,
                        memory_gib_hour_preemptible=2, storage_gib_hour=30, storage_gib_hour_preemptible=3,
                        service_fee_core_hour=0.5)
    pricing = Pricing(prices)
    spot = add_usage({}, pricing.quantities(2000, 4 * 1024**3, 10, True), HOUR)
    cost, breakdown = pricing.price(spot)
    assert breakdown == pytest.approx({"compute/n1-preemptible/1": 2.0, "memory/n1-preemptible/1": 8.0,
                                       "disk/local-ssd/preemptible/1": 30.0, "service-fee/1": 1.0})
    assert list(breakdown) == sorted(breakdown) and cost == pytest.approx(41.0)
    regular = add_usage({}, pricing.quantities(1000, 0, 0, False), HOUR // 2)
    assert pricing.price(regular)[1] == pytest.approx({"compute/n1-nonpreemptible/1": 5.0, "service-fee/1": 0.25})
    # usage recorded under another machine family (an older price table) is still priced
    assert pricing.price({"compute/n2-preemptible/1": 1000 * HOUR})[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no price for resource 'gpu/x/1'"):
        pricing.price({"gpu/x/1": 1})


def test_an_attempt_is_billed_start_to_end_and_while_running_up_to_its_latest_report() -> None:
    assert accrued_ms(None, None, 500_000) == 0            # never started
    assert accrued_ms(None, 10, None) == 0
    assert accrued_ms(100_000, 130_500, 999_999) == 30_500  # ended: start to end, whatever was reported
    assert accrued_ms(10, 5, None) == 0                    # never negative
    assert accrued_ms(100_000, None, None) == 0            # running, not reported yet
    assert accrued_ms(100_000, None, 170_000) == 70_000    # running: up to the report
    assert accrued_ms(100_000, None, 90_000) == 0


@given(st.lists(st.tuples(st.sampled_from([(1000, 2**30, 0, True), (250, 3 * 2**29, 10, False),
                                           (4000, 15 * 2**30, 100, True)]),
                          st.integers(-10**6, 10**9)), max_size=30), st.randoms())
def test_usage_and_its_price_do_not_depend_on_the_order_it_was_added_in(parts, rnd) -> None:  # type: ignore[no-untyped-def]
    """An attempt's billing arrives in steps (each report, then the end), its job's and batch's in
    many; integer usage makes every split of the same total sum, and so price, the same."""
    pricing = Pricing(PriceTable())
    forwards: dict[str, int] = {}
    for shape, ms in parts:
        forwards = add_usage(forwards, pricing.quantities(*shape), ms)
    shuffled = list(parts)
    rnd.shuffle(shuffled)
    backwards: dict[str, int] = {}
    for shape, ms in shuffled:
        backwards = add_usage(backwards, pricing.quantities(*shape), ms)
    assert forwards == backwards and pricing.price(forwards) == pricing.price(backwards)


def test_price_table_from_yaml_overrides_some_prices(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("cpu_core_hour: 0.05\nmemory_gib_hour_preemptible: 0\nmachine_family: n2\n")
    prices = PriceTable.from_yaml(path)
    assert prices.cpu_core_hour == 0.05 and prices.memory_gib_hour_preemptible == 0.0
    assert prices.storage_gib_hour == PriceTable().storage_gib_hour
    assert prices.machine_family == "n2"
    assert PriceTable(**prices.to_yaml_dict()) == prices


@pytest.mark.parametrize("text, message", [
    ("cpu_per_hour: 1\n", "unknown price"),
    ("cpu_core_hour: -1\n", "non-negative"),
    ("cpu_core_hour: cheap\n", "non-negative"),
    ("cpu_core_hour: .inf\n", "non-negative"),
    ("service_fee_core_hour: .nan\n", "non-negative"),
    ("machine_family: N1/x\n", "machine_family must be"),
    ("- 1\n", "mapping"),
])
def test_price_table_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(PriceTableError, match=message):
        PriceTable.from_yaml(path)
