"""Redis's answers as Python values, for the store's modules (its connections answer bytes), and times as the scores
they are written with."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """An answer's bytes as text (a str given stays as it is)."""
    return value.decode() if isinstance(value, bytes) else value


def time_score(when: float | None) -> str:
    """A time as a sorted-set score argument; '' for none. Millisecond precision, so claims compare exactly."""
    return "" if when is None else f"{when:.3f}"
