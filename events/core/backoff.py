"""Retry backoff after a system failure: exponential in the attempt number, capped, jittered.

The jitter comes from a hash of the failed attempt's id, not from a random generator, so a
re-derivation after a crash (or a replay) computes the very same `not_before`.
"""

from __future__ import annotations

import hashlib
from typing import Final

BASE_DELAY_MS: Final = 1_000
MAX_DELAY_MS: Final = 5 * 60 * 1_000


def jitter_fraction(attempt_id: str) -> float:
    """A value in [0, 1) that is the same for the same attempt id everywhere and always."""
    digest = hashlib.blake2b(attempt_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def retry_delay_ms(n_attempts: int, attempt_id: str) -> int:
    """Delay before attempt n_attempts + 1: base * 2^(n-1), capped, then scaled into [1/2, 1)
    of that ("equal jitter"), so retries of many jobs lost together spread out."""
    exponent = max(n_attempts - 1, 0)
    ceiling = MAX_DELAY_MS if exponent >= 30 else min(MAX_DELAY_MS, BASE_DELAY_MS << exponent)
    return ceiling // 2 + int(ceiling / 2 * jitter_fraction(attempt_id))


def retry_not_before(ended_at: int, n_attempts: int, attempt_id: str) -> int:
    """Earliest time (ms) the next attempt may be scheduled, counted from the failed attempt's end."""
    return ended_at + retry_delay_ms(n_attempts, attempt_id)
