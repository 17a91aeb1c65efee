"""Retry delays: exponential growth, a ceiling, and half jitter (pure)."""

from __future__ import annotations

import random
import re


def backoff_delay(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): uniform in [d/2, d], d = min(cap, base·2^(attempt-1)).

    Half-jitter keeps a floor under the wait while still spreading a burst of retries apart.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def backoff_schedule(retries: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> list[float]:
    return [backoff_delay(n, base=base, cap=cap, rng=rng) for n in range(1, retries + 1)]


def retry_after_seconds(header: str | None, default: float, *, cap: float = 300.0) -> float:
    """A ``Retry-After`` header in seconds (numeric form; dates fall back to ``default``), capped."""
    text = (header or "").strip()
    value = float(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else default
    return max(0.0, min(cap, value))
