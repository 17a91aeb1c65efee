"""What BFL says of a task in its answers (pure): a callback body or a get_result answer read into a report, the
price BFL states for a task, and BFL's own words about a task or a refusal as a person reads them.

BFL states a task's ``cost`` in credits (1 credit = 1 US cent), with the megapixels read and made
(``input_mp``, ``output_mp``), in its answer to the submission, and sometimes in a result. Anything
that is not a usable number there is unknown, never an error: a submission must not fail over it.

BFL's words (its ``message``, ``error``, ``details`` or ``detail``) are text, never the repr of the JSON they came
in. BFL says the same thing in several shapes: a string, an object such as ``{"error": "Generation failed",
"message": "Internal error"}``, FastAPI's list of field errors, or a list of reasons. Each becomes one line of
words; an object's ``message`` is its most specific part, then its ``error``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import IO, Any, Mapping

from fluxhook.core import json_body
from fluxhook.core.errors import InvalidRequest, PayloadTooLarge
from fluxhook.core.job import BFL_READY, bfl_status_word, progress_value

# BFL echoes the prompt (and the input) in its callbacks: long prompts make long bodies.
MAX_CALLBACK_BYTES = 1024 * 1024
# The refusal of a larger one, wherever it is refused (the web server before the app, or the app).
CALLBACK_TOO_LARGE = f"callback bodies are at most 1 MiB ({MAX_CALLBACK_BYTES} bytes)"
_MAX_ID_LENGTH = 200


@dataclass(frozen=True)
class BFLReport:
    """One report of a task's state: canonical status, result URL when Ready, BFL's message."""

    bfl_id: str
    status: str
    sample_url: str | None = None
    message: str | None = None
    # BFL's own end_time for a Ready task, when it gives a plausible one (epoch seconds).
    finished_at: float | None = None
    # BFL's progress (0-1) while the task runs, if it said.
    progress: float | None = None
    # A Ready video draft's result.draft_cache: a second signed URL, of an opaque bundle.
    draft_cache_url: str | None = None
    # A Ready result's seed, and the price when BFL puts one in the result.
    seed: int | None = None
    cost: Cost | None = None


def read_callback(stream: IO[bytes], length: int | None) -> bytes:
    """A callback's body from ``stream`` (``length``: its Content-Length if sent); ``PayloadTooLarge`` past
    ``MAX_CALLBACK_BYTES``, read no further than one byte beyond."""
    if length is not None and length > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(CALLBACK_TOO_LARGE)
    body = stream.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge(CALLBACK_TOO_LARGE)
    return body


def parse_callback(body: bytes) -> BFLReport:
    """Parse a callback body; raise InvalidRequest unless it is a JSON object with an id and a status."""
    return report_from_payload(json_body.loads(body))


def report_from_payload(payload: object, bfl_id: str | None = None) -> BFLReport:
    """Build an event from a decoded callback or get_result payload (``task_id`` accepted for ``id``)."""
    if not isinstance(payload, dict):
        raise InvalidRequest("the body must be a JSON object")
    task_id = payload.get("id") or payload.get("task_id") or bfl_id
    if not isinstance(task_id, str) or not task_id.strip() or len(task_id) > _MAX_ID_LENGTH:
        raise InvalidRequest("the body needs a task id in 'id' (or 'task_id')")
    raw_status = payload.get("status")
    if not isinstance(raw_status, str):
        raise InvalidRequest("the body needs a 'status' string")
    # A word BFL added (Reasoning, Generating...) means the task still runs: kept, never refused.
    status = bfl_status_word(raw_status)
    if status is None:
        raise InvalidRequest("the body needs a non-empty 'status'")
    sample = finished_at = seed = cost = None
    if status == BFL_READY:
        result = payload.get("result")
        result = result if isinstance(result, dict) else {}
        sample = result.get("sample")
        if not isinstance(sample, str) or not sample:
            raise InvalidRequest("a Ready report needs 'result.sample' with the image URL")
        finished_at = _epoch(result.get("end_time"))
        seed = _seed(result.get("seed"))
        cost = result_cost(payload)
    # BFL's words for a failure: a message, an error or an object of details, whichever it sent.
    message = words(payload.get("message")) or words(payload.get("error")) or words(payload.get("details"))
    return BFLReport(
        bfl_id=task_id.strip(),
        status=status,
        sample_url=sample,
        message=message,
        finished_at=finished_at,
        progress=progress_value(payload.get("progress")),
        draft_cache_url=_draft_cache(payload.get("result")) if status == BFL_READY else None,
        seed=seed,
        cost=cost,
    )


def _seed(value: object) -> int | None:
    """BFL's seed, if it is a whole number a record can keep (a 64-bit one)."""
    if isinstance(value, bool) or not isinstance(value, int) or not -2**63 <= value < 2**64:
        return None
    return value


def _draft_cache(result: object) -> str | None:
    """``result.draft_cache`` when it is a URL (BFL's documents give it as one; anything else is ignored)."""
    url = result.get("draft_cache") if isinstance(result, dict) else None
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 4096 else None


def _epoch(value: object) -> float | None:
    """A timestamp in seconds or milliseconds since the epoch, if it looks like one from this century."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = value / 1000 if value > 1e11 else float(value)
    return seconds if 946684800 <= seconds <= 4102444800 else None


# --- BFL's price of a task ---

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


# --- BFL's words ---

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
