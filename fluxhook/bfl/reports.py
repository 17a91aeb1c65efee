"""What BFL tells us about a task, from a callback body or a get_result answer (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from fluxhook.bfl.costs import Cost, result_cost
from fluxhook.bfl.words import words
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
