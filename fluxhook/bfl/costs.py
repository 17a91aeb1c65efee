"""BFL's price of a task, read from its answers (pure).

BFL states a task's ``cost`` in credits (1 credit = 1 US cent), with the megapixels read and made
(``input_mp``, ``output_mp``), in its answer to the submission, and sometimes in a result. Anything
that is not a usable number there is unknown, never an error: a submission must not fail over it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

# A task's price above this is not a price but a malformed answer (1,000 USD).
MAX_CREDITS = 100_000
MAX_MEGAPIXELS = 1_000


@dataclass(frozen=True)
class Cost:
    """BFL's price of one task: credits and megapixels in and out, each None when BFL did not say it usably."""

    credits: float | None = None
    input_mp: float | None = None
    output_mp: float | None = None

    def fields(self) -> dict[str, float]:
        """The job record's fields for what is known."""
        known = {"cost_credits": self.credits, "cost_input_mp": self.input_mp, "cost_output_mp": self.output_mp}
        return {name: value for name, value in known.items() if value is not None}


def parse_cost(payload: object) -> Cost | None:
    """BFL's ``cost``, ``input_mp`` and ``output_mp`` from an answer; None if none of them is usable.

    Each one missing, not a number (a string, a boolean), negative, not finite or implausibly large is unknown.
    """
    if not isinstance(payload, Mapping):
        return None
    cost = Cost(credits=_amount(payload.get("cost"), MAX_CREDITS, 6),
                input_mp=_amount(payload.get("input_mp"), MAX_MEGAPIXELS, 4),
                output_mp=_amount(payload.get("output_mp"), MAX_MEGAPIXELS, 4))
    return cost if cost != Cost() else None


def result_cost(payload: object) -> Cost | None:
    """The price in a result (a callback body or a poll answer): beside its ``status``, else inside ``result``."""
    if not isinstance(payload, Mapping):
        return None
    return parse_cost(payload) or parse_cost(payload.get("result"))


def _amount(value: Any, largest: float, digits: int) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # Compared before any conversion: an integer too large for a float must not raise.
    if not 0 <= value <= largest or not math.isfinite(value):
        return None
    return round(float(value), digits)
