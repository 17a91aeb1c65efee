"""Redis's answers as Python values, for the store's modules (its connections answer bytes)."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """An answer's bytes as text (a str given stays as it is)."""
    return value.decode() if isinstance(value, bytes) else value
