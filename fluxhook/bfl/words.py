"""BFL's own words about a task or a refusal (its ``message``, ``error``, ``details`` or ``detail``), as a person
reads them: text, never the repr of the JSON it came in (pure).

BFL says the same thing in several shapes: a string, an object such as ``{"error": "Generation failed",
"message": "Internal error"}``, FastAPI's list of field errors, or a list of reasons. Each becomes one line of
words; an object's ``message`` is its most specific part, then its ``error``.
"""

from __future__ import annotations

from typing import Any

# The most of BFL's words a job's error or a refusal repeats.
MAX_WORDS = 500
# An object's parts said on their own, the most specific first; any other entry is said as "name: words".
_OWN_WORDS = ("message", "msg", "error", "detail", "details", "reason")
# How deep nested objects are read: BFL's are one or two levels, anything deeper is not words for people.
_DEPTH = 4


def words(value: Any) -> str | None:
    """BFL's ``value`` (from a JSON body) as one line of words, at most ``MAX_WORDS`` characters; None if it says
    nothing."""
    said = _words(value, _DEPTH)
    if not said:
        return None
    return said if len(said) <= MAX_WORDS else said[:MAX_WORDS - 1].rstrip() + "…"


def _words(value: Any, depth: int) -> str:
    if value is None or isinstance(value, bool) or depth <= 0:
        return ""
    if isinstance(value, str):
        return " ".join("".join(c if c.isprintable() else " " for c in value[:4 * MAX_WORDS]).split())
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        return "; ".join(dict.fromkeys(said for item in value[:20] if (said := _words(item, depth - 1))))
    if isinstance(value, dict):
        return _object_words(value, depth)
    return ""


def _object_words(value: dict, depth: int) -> str:
    if "loc" in value and ("msg" in value or "type" in value):
        # FastAPI's field error: where, then what is wrong with it ("prompt: Field required").
        place = ".".join(str(p) for p in value.get("loc") or [] if p != "body")
        message = _words(value.get("msg") or value.get("type"), depth - 1) or "invalid"
        return f"{place}: {message}" if place else message
    for name in _OWN_WORDS:
        if said := _words(value.get(name), depth - 1):
            return said
    parts = []
    for name, item in list(value.items())[:20]:
        if said := _words(item, depth - 1):
            parts.append(f"{_words(name, 1)}: {said}")
    return "; ".join(parts)
