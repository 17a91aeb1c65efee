"""Credits and a balance as people read them, the same wherever they are shown: the dashboard, ``fluxhook accounts``
and ``fluxhook doctor`` (pure; imports nothing, so the command line's client commands stay light)."""

from __future__ import annotations

from datetime import datetime


def format_credits(credits: float) -> str:
    """A number of credits as people read it: 1000000.0 → '1,000,000'; 12.5 → '12.50'; never '1e+06'."""
    return f"{int(credits):,}" if credits == int(credits) else f"{credits:,.2f}"


def age(seconds: float) -> str:
    """How long ago, as coarse as a reader needs it: ``just now``, ``40 s``, ``3 min``, ``2 h 05 min``."""
    if seconds < 1:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def read_ago(at: float, now: float) -> str:
    """When a balance was read from BFL, in words: ``read just now``, ``read 40 s ago``."""
    said = age(max(0.0, now - at))
    return f"read {said}" if said == "just now" else f"read {said} ago"


def balance_words(credits: float | None, at: float | None, now: float) -> str:
    """An account's balance and when it was read: ``1,000,000 credits, read 40 s ago``; ``not read lately``."""
    if credits is None or at is None:
        return "not read lately"
    return f"{format_credits(credits)} credits, {read_ago(at, now)}"


def epoch(iso_time: str | None) -> float | None:
    """``2026-11-21T10:00:00Z`` (the API's times) as epoch seconds; None for None."""
    if iso_time is None:
        return None
    return datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
