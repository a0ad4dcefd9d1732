"""The local stack's billing settings: the price table, how often workers report running attempts,
how often the front end enforces billing limits.

Kept in stack.json's `extra` (and the price table copied to `$SQUALL_HOME/prices.yaml`) so a
`squall up` without the options keeps what the stack was started with: the read model's rows were
priced with that table, and `squall replay` must use the same one (`--prices`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

PRICES_FILE = "prices.yaml"
_PRICES, _REPORTS, _LOOP = "prices", "billing_interval_s", "billing_loop_interval_s"


class BillingSettingsError(ValueError):
    """A billing option is wrong; the message names it."""


def configure(home: Path, extra: dict[str, str], prices: Path | None = None, billing_interval_s: float | None = None,
              billing_loop_interval_s: float | None = None) -> None:
    """Check and record the options given; those not given keep their earlier value (in `extra`)."""
    from projections.cost import PriceTable, PriceTableError

    if prices is not None:
        try:
            PriceTable.from_yaml(prices)
        except PriceTableError as exc:
            raise BillingSettingsError(f"--prices: {exc}") from exc
        target = home / PRICES_FILE
        if Path(prices).resolve() != target.resolve():
            shutil.copyfile(prices, target)
        extra[_PRICES] = str(target)
    for option, key, value in (("--billing-interval", _REPORTS, billing_interval_s),
                               ("--billing-loop-interval", _LOOP, billing_loop_interval_s)):
        if value is not None:
            if not value > 0:
                raise BillingSettingsError(f"{option} must be a positive number of seconds, got {value!r}")
            extra[key] = repr(float(value))


def price_args(extra: dict[str, Any]) -> tuple[str, ...]:
    """For the read model and the front end (which prices estimates as the read model bills)."""
    return ("--prices", extra[_PRICES]) if _PRICES in extra else ()


def front_args(extra: dict[str, Any]) -> tuple[str, ...]:
    loop = ("--billing-loop-interval", extra[_LOOP]) if _LOOP in extra else ()
    return (*price_args(extra), *loop)


def worker_args(extra: dict[str, Any]) -> list[str]:
    """For worker agents and simulated workers alike."""
    return ["--billing-interval", extra[_REPORTS]] if _REPORTS in extra else []
