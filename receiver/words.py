"""The short words the dashboard writes a duration and a wait's reason in, on every page and in the timeline."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """A short human duration: ``850 ms``, ``4.2 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


# A reason whose own words would widen the job list's column past its room; its description says the rest.
SHORTER = {"end_user_max_active": "end user limit"}


def reason_words(reason: str) -> str:
    """A wait's reason as a few words (``key daily credits``, ``BFL slots``, ``end user limit``)."""
    return SHORTER.get(str(reason), str(reason).replace("_", " ").replace("bfl", "BFL"))
