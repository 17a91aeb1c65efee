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
    webhooks: int = 0
    polls: int = 0
    downloads: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in st.TERMINAL

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> "Job":
        values: dict[str, Any] = {}
        image: dict[str, Any] = {}
        for name, raw in data.items():
            if name.startswith(_IMAGE_PREFIX):
                part = name[len(_IMAGE_PREFIX):]
                image[part] = int(raw) if part in _IMAGE_NUMBERS else raw
            elif name in _JSON_FIELDS:
                values[name] = json.loads(raw) if raw else None
            elif name in COUNTERS:
                values[name] = int(raw)
            elif name == "ready_proven":
                values[name] = raw != "0"
            elif name in ("created_at", "updated_at", "completed_at", "submitted_at", "finished_at", "notified_at",
                          "progress"):
                values[name] = float(raw) if raw else None
            elif name in cls.__dataclass_fields__:
                values[name] = raw or None
        values["metadata"] = values.get("metadata") or {}
        values["image"] = image or None
        return cls(**values)

    def to_api(self, image_url: str | None = None) -> dict:
        """The job object of SPEC §3."""
        image = dict(self.image, url=image_url) if self.image else None
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
            # Only while the task runs at BFL (SPEC §3).
            "progress": self.progress if self.status in (st.QUEUED, st.SUBMITTED) else None,
        }


def encode_fields(fields: dict[str, Any]) -> list[str]:
    """The record's fields as Redis hash field/value words."""
    flat: list[str] = []
    for name, value in fields.items():
        if name == "image":
            for part, item in (value or {}).items():
                flat += [_IMAGE_PREFIX + part, str(item)]
            continue
        if name in _JSON_FIELDS:
            value = json.dumps(value, separators=(",", ":")) if value is not None else ""
        elif isinstance(value, bool):
            value = "1" if value else "0"
        elif value is None:
            value = ""
        flat += [name, str(value)]
    return flat




def decode_hash(data: dict) -> dict[str, str]:
    """A hash as redis-py returns it (bytes or str) as text."""
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in data.items()
    }
