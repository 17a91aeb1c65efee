"""What a job stream sends (docs/api.md "Streams"), pure: its frames, each event's ``id:`` and what a reconnect is owed.

An event ``job`` carries the job as ``GET /v1/jobs/{id}`` shows it. Its id is the job's version,
``<updated_at in ms>-<digest>``, the digest over what a stream shows changing (``SHOWN``): a reconnect whose
``Last-Event-ID`` carries the digest of the job as it is now saw that state and is owed nothing (a live stream would
have sent nothing since either), any other is owed the job as it is. On ``GET /v1/events`` (many jobs) the
milliseconds are instead the stream's high-water mark of ``updated_at``: a reconnect is owed every job of the
caller changed since then (``since``), less ``RECONNECT_MARGIN_MS`` for the clocks of several processes.
"""

from __future__ import annotations

import hashlib
import json
import re

# What a stream shows changing: an event is sent when one of these differs from the last one sent.
SHOWN = ("status", "bfl_status", "progress", "cost", "waiting", "error")
KEEPALIVE = b": keepalive\n\n"
# A job event's id: milliseconds, then the digest of what it shows.
_EVENT_ID = re.compile(r"^([0-9]{1,16})-([0-9a-f]{12})$")
RECONNECT_MARGIN_MS = 2000


def shown(job: dict) -> str:
    """The digest of what a stream shows of the job (``job``: the job JSON)."""
    return _digest(job, SHOWN)


def _digest(shown_: dict, names: tuple[str, ...]) -> str:
    picked = json.dumps([shown_.get(name) for name in names], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(picked.encode()).hexdigest()[:12]


# What a batch's stream shows changing: its batch object's.
BATCH_SHOWN = ("status", "counts", "cost", "ended_at")


def shown_batch(batch: dict) -> str:
    """The digest of what a stream shows of the batch (``batch``: the batch object)."""
    return _digest(batch, BATCH_SHOWN)


def event_id(millis: int, digest: str) -> str:
    return f"{millis}-{digest}"


def version(updated_at: float, job: dict) -> str:
    """The job's version, the id of its event on its own stream: ``updated_at`` in ms and what it shows."""
    return event_id(int(updated_at * 1000), shown(job))


def since(last_event_id: str | None) -> int | None:
    """The milliseconds of a ``Last-Event-ID`` this service gave (None: none, or not one of ours)."""
    found = _EVENT_ID.fullmatch((last_event_id or "").strip())
    return int(found.group(1)) if found else None


def owed(last_event_id: str | None, current: str) -> bool:
    """Whether a reconnect to a job's stream is owed the job at once (``current``: its version now): unless the
    last event it saw showed the same state."""
    seen = _EVENT_ID.fullmatch((last_event_id or "").strip())
    now = _EVENT_ID.fullmatch(current)
    return seen is None or now is None or seen.group(2) != now.group(2)


def frame(event: str, data: bytes, event_id_: str) -> bytes:
    """One event in text/event-stream's framing; ``data`` as ``encode`` made it (its JSON holds no newline: one
    ``data:`` line), once for every stream the event goes to."""
    return b"event: %s\nid: %s\ndata: %s\n\n" % (event.encode(), event_id_.encode(), data)


def encode(data: dict) -> bytes:
    """An event's JSON, once for every stream it goes to."""
    return json.dumps(data, separators=(",", ":")).encode()


def retry(millis: int) -> bytes:
    """The field telling a client how long to wait before it reconnects."""
    return f"retry: {millis}\n\n".encode()


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of HTTP/1.1's chunked transfer coding."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"
