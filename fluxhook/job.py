"""The job record: what fluxhook knows of one task, its id, and how it is kept as a Redis hash's fields."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fluxhook import transitions as st

_JOB_ID = re.compile(r"^job_[0-9A-HJKMNP-TV-Z]{26}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
COUNTERS = ("webhooks", "polls", "downloads")
_JSON_FIELDS = ("error", "metadata", "input")
# The image is kept as short fields, not one JSON value: Redis keeps a hash whose values are all
# at most 64 bytes in its compact encoding, about half the memory (the image JSON is ~140 bytes).
_IMAGE_PREFIX = "image_"
_IMAGE_NUMBERS = ("size", "width", "height")
# So are a video, its poster and a draft cache: each object's fields under its own prefix.
_OBJECTS = {"image": _IMAGE_PREFIX, "video": "video_", "poster": "poster_", "draft_cache": "dcache_"}
_OBJECT_FLOATS = ("duration", "fps")
_OBJECT_BOOLEANS = ("has_audio",)
# BFL's URLs: of no use once a job has ended (the record drops them then).
BFL_URL_FIELDS = ("result_url", "polling_url", "draft_cache_source")
# The prompt likewise, in pieces of at most 64 bytes (``prompt_0``, ``prompt_1``...).
_PROMPT_PREFIX = "prompt_"
_PIECE_BYTES = 64
MAX_PROMPT_CHARS = 2000
_FLOATS = ("created_at", "updated_at", "completed_at", "submitted_at", "finished_at", "notified_at", "app_notified_at",
           "progress", "cost_credits", "cost_input_mp", "cost_output_mp", "draft_cache_since")
_INTEGERS = ("seed", "counted_credits", "counted_spend")
_last_id_value = 0
_id_lock = threading.Lock()


def new_job_id(now: float | None = None) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, so ids sort by creation time.

    Within one process ids are also strictly increasing, even for two made in the same millisecond.
    """
    global _last_id_value
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    with _id_lock:
        if value <= _last_id_value and millis == _last_id_value >> 80:
            value = _last_id_value + 1
        _last_id_value = value
    return _encode_id(value)


def job_id_floor(when: float) -> str:
    """The smallest job id that could be made at ``when``: every id made earlier sorts below it."""
    return _encode_id(int(when * 1000) << 80)


def _encode_id(value: int) -> str:
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "job_" + "".join(reversed(chars))


def is_job_id(text: str) -> bool:
    """Whether ``text`` has the shape of a job id (checked before it reaches a Redis key or a path)."""
    return bool(_JOB_ID.fullmatch(text or ""))


def iso(ts: float | None) -> str | None:
    """An epoch time as ``2026-11-21T10:00:00Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Job:
    """One job record, as stored."""

    id: str
    status: str
    model: str | None = None
    bfl_id: str | None = None
    bfl_status: str | None = None
    # BFL's last progress (0-1) while the task runs.
    progress: float | None = None
    source: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    completed_at: float | None = None
    # When BFL accepted the task (tracked jobs: when tracking began); the one-hour limit counts from here.
    submitted_at: float | None = None
    # When BFL finished the task (its end_time, else when fluxhook learned it): the start of the
    # 10-minute life of the result URL.
    finished_at: float | None = None
    image: dict | None = None
    # A video result: like ``image``, with duration, fps and has_audio; ``poster`` is its still frame
    # (key, size, sha256, content_type). A job has an image or a video, never both.
    video: dict | None = None
    poster: dict | None = None
    # BFL's draft_cache URL of a Ready result, and the bundle once stored (key, size, sha256).
    draft_cache_source: str | None = None
    # When BFL gave that URL, if a poll renewed it (else its life runs from finished_at).
    draft_cache_since: float | None = None
    draft_cache: dict | None = None
    error: dict | None = None
    metadata: dict = field(default_factory=dict)
    input: dict | None = None
    polling_url: str | None = None
    result_url: str | None = None
    # Whether the Ready report behind result_url proved itself (secret, signature, or BFL's own poll).
    ready_proven: bool = True
    storage_key: str | None = None
    # The stored image's small preview (see ``thumbnails``); None if there is none.
    thumbnail_key: str | None = None
    # The BFL slot pool of a job fluxhook submits (see ``slots``); None for tracked jobs.
    pool: str | None = None
    # Where the job JSON is POSTed once the job is terminal (see ``notify``); None: nowhere.
    notify_url: str | None = None
    # When that notification was delivered (a 2xx answer); bookkeeping, not part of the job's state.
    notified_at: float | None = None
    # A job made through the BFL-compatible API may name the app's own webhook (see ``app_webhooks``):
    # where the get_result JSON is POSTed once the job is terminal, the app's secret for it, sealed
    # with SECRET_KEY (never kept in the clear), and when that call was delivered.
    app_webhook_url: str | None = None
    app_webhook_secret: str | None = field(default=None, repr=False)
    app_notified_at: float | None = None
    # Provenance (SPEC §3): the task's input.prompt (cut to MAX_PROMPT_CHARS, kept after the input
    # goes), BFL's seed from the result, and BFL's price: credits and megapixels, each None if BFL never said.
    prompt: str | None = None
    seed: int | None = None
    cost_credits: float | None = None
    cost_input_mp: float | None = None
    cost_output_mp: float | None = None
    # Usage bookkeeping (see ``fluxhook.usage``): the UTC day the job's counters live under (set when
    # fluxhook submitted it), and the micro-credits counted there as its credits and as budget spend.
    usage_day: str | None = None
    counted_credits: int | None = None
    counted_spend: int | None = None
    webhooks: int = 0
    polls: int = 0
    downloads: int = 0

    def __post_init__(self) -> None:
        if self.prompt is None and self.input:
            self.prompt = prompt_of(self.input)

    @property
    def terminal(self) -> bool:
        return self.status in st.TERMINAL

    def cost(self) -> dict | None:
        """``cost`` as the API shows it: credits and megapixels (each None if unknown); None if BFL said nothing."""
        parts = {"credits": self.cost_credits, "input_mp": self.cost_input_mp, "output_mp": self.cost_output_mp}
        return parts if any(v is not None for v in parts.values()) else None

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> "Job":
        values: dict[str, Any] = {}
        objects: dict[str, dict[str, Any]] = {name: {} for name in _OBJECTS}
        pieces: dict[int, str] = {}
        for name, raw in data.items():
            owner = _object_of(name)
            if owner is not None:
                part = name[len(_OBJECTS[owner]):]
                objects[owner][part] = _object_value(part, raw)
            elif name.startswith(_PROMPT_PREFIX) and name[len(_PROMPT_PREFIX):].isdigit():
                pieces[int(name[len(_PROMPT_PREFIX):])] = raw
            elif name in _INTEGERS:
                values[name] = int(raw) if raw else None
            elif name in _JSON_FIELDS:
                values[name] = json.loads(raw) if raw else None
            elif name in COUNTERS:
                values[name] = int(raw)
            elif name == "ready_proven":
                values[name] = raw != "0"
            elif name in _FLOATS:
                values[name] = float(raw) if raw else None
            elif name in cls.__dataclass_fields__:
                values[name] = raw or None
        values["metadata"] = values.get("metadata") or {}
        for owner, parts in objects.items():
            values[owner] = parts or None
        if pieces:
            values["prompt"] = "".join(pieces[i] for i in sorted(pieces))
        return cls(**values)

    def to_api(self, image_url: str | None = None, *, video_url: str | None = None, poster_url: str | None = None,
               draft_cache_url: str | None = None) -> dict:
        """The job object of SPEC §3."""
        image = dict(self.image, url=image_url) if self.image else None
        video = dict(self.video, url=video_url, poster_url=poster_url) if self.video else None
        draft_cache = ({"url": draft_cache_url, "size": self.draft_cache.get("size"),
                        "sha256": self.draft_cache.get("sha256")} if self.draft_cache else None)
        return {
            "id": self.id,
            "bfl_id": self.bfl_id,
            "model": self.model,
            "status": self.status,
            "bfl_status": self.bfl_status,
            "source": self.source,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "completed_at": iso(self.completed_at),
            "image": image,
            "error": self.error,
            "metadata": self.metadata,
            "attempts": {"webhooks": self.webhooks, "polls": self.polls, "downloads": self.downloads},
            "prompt": self.prompt,
            "seed": self.seed,
            # Only while the task runs at BFL (SPEC §3).
            "progress": self.progress if self.status in (st.QUEUED, st.SUBMITTED) else None,
            "video": video,
            "draft_cache": draft_cache,
            "cost": self.cost(),
        }


def encode_fields(fields: dict[str, Any]) -> list[str]:
    """The record's fields as Redis hash field/value words."""
    flat: list[str] = []
    for name, value in fields.items():
        if name in _OBJECTS:
            for part, item in (value or {}).items():
                flat += [_OBJECTS[name] + part, ("1" if item else "0") if isinstance(item, bool) else str(item)]
            continue
        if name == "prompt":
            for number, piece in enumerate(_pieces(value or "")):
                flat += [f"{_PROMPT_PREFIX}{number}", piece]
            continue
        if name in _JSON_FIELDS:
            value = json.dumps(value, separators=(",", ":")) if value is not None else ""
        elif isinstance(value, bool):
            value = "1" if value else "0"
        elif value is None:
            value = ""
        flat += [name, str(value)]
    return flat


def prompt_of(task_input: dict | None) -> str | None:
    """The task's ``input.prompt`` as a job keeps it: its first ``MAX_PROMPT_CHARS`` characters; None if none."""
    prompt = (task_input or {}).get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return None
    return prompt[:MAX_PROMPT_CHARS]


def _pieces(text: str) -> list[str]:
    """``text`` cut into pieces of at most ``_PIECE_BYTES`` bytes of UTF-8, never inside a character."""
    pieces, piece, size = [], [], 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > _PIECE_BYTES:
            pieces.append("".join(piece))
            piece, size = [], 0
        piece.append(char)
        size += width
    if piece:
        pieces.append("".join(piece))
    return pieces


def _object_of(field_name: str) -> str | None:
    """Which object (image, video...) a record field belongs to, by its prefix; None for a field of its own."""
    if field_name in BFL_URL_FIELDS:
        return None
    for name, prefix in _OBJECTS.items():
        if field_name.startswith(prefix):
            return name
    return None


def _object_value(part: str, raw: str) -> Any:
    if part in _IMAGE_NUMBERS:
        return int(raw)
    if part in _OBJECT_FLOATS:
        return float(raw)
    if part in _OBJECT_BOOLEANS:
        return raw == "1"
    return raw


def decode_hash(data: dict) -> dict[str, str]:
    """A hash as redis-py returns it (bytes or str) as text."""
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in data.items()
    }
