"""A job record as a Redis hash's fields: how each value is written and read back, and which fields' changes are
announced (``store.job_changes``).

Short fields, so Redis keeps the hash in its compact encoding (every value at most 64 bytes, hash-max-listpack-value),
which one JSON value of the image would exceed: the image, a video, its poster and a draft cache each as fields under a
prefix of their own, the prompt, the store's location (a folder's path may be long) and an error in pieces
(``prompt_0``, ``prompt_1``...).
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any, Sequence

from fluxhook.core.job import BFL_URL_FIELDS, COUNTERS, Job

# Written as JSON; ``error`` in pieces too (a record written before keeps one ``error`` field, read as it was).
_JSON_FIELDS = ("error", "metadata", "input")
_IMAGE_NUMBERS = ("size", "width", "height")
_OBJECTS = {"image": "image_", "video": "video_", "poster": "poster_", "draft_cache": "dcache_"}
_OBJECT_FLOATS = ("duration", "fps")
_OBJECT_BOOLEANS = ("has_audio",)
_PIECED = {"prompt": "prompt_", "stored_in": "stored_in_", "error": "error_"}
_PIECE_BYTES = 64
_FLOATS = ("created_at", "updated_at", "completed_at", "submitted_at", "finished_at", "notified_at", "app_notified_at",
           "progress", "cost_credits", "cost_input_mp", "cost_output_mp", "draft_cache_since", "waiting_until",
           "uncertain_at", "deadline", "delete_asked_at", "end_user_daily_credits")
_JOB_FIELDS = frozenset(field.name for field in fields(Job))
_INTEGERS = ("seed", "counted_credits", "counted_spend", "batch_index", "end_user_max_active")


# What a record without the field reads as (``job_from_hash``'s defaults): a new job's record leaves these out.
UNWRITTEN_DEFAULTS: dict[str, Any] = {"metadata": {}, "ready_proven": True, **{name: 0 for name in COUNTERS}}


# The record's fields whose change is announced beside the status: what a job's stream shows changing (its
# ``bfl_status``, ``progress``, ``cost`` and ``waiting``, docs/api.md).
ANNOUNCED_FIELDS = frozenset({"bfl_status", "progress", "cost_credits", "cost_input_mp", "cost_output_mp",
                              "waiting_reason", "waiting_until"})


def new_fields(job: Job) -> dict[str, Any]:
    """The fields a new job's record is made of: those with a value, but a default it reads back without."""
    return {name: value for name, value in job.__dict__.items()
            if value is not None and not (name in UNWRITTEN_DEFAULTS and value == UNWRITTEN_DEFAULTS[name])}


def encode_fields(fields: dict[str, Any]) -> list[str]:
    """The record's fields as Redis hash field/value words."""
    flat: list[str] = []
    for name, value in fields.items():
        if name in _OBJECTS:
            for part, item in (value or {}).items():
                flat += [_OBJECTS[name] + part, ("1" if item else "0") if isinstance(item, bool) else str(item)]
            continue
        if name in _JSON_FIELDS:
            value = json.dumps(value, separators=(",", ":")) if value is not None else ""
        if name in _PIECED:
            for number, piece in enumerate(_pieces(value or "")):
                flat += [f"{_PIECED[name]}{number}", piece]
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif value is None:
            value = ""
        flat += [name, str(value)]
    return flat


def announced(fields: Sequence[str]) -> list[str]:
    """The field/value words of a write (``encode_fields``) whose change is announced; [] for none."""
    return [word for name, value in zip(fields[0::2], fields[1::2], strict=True) if name in ANNOUNCED_FIELDS
            for word in (name, value)]


def job_from_hash(data: dict[str, str]) -> Job:
    """The job a record's fields (as text: ``scripts.decode_hash``) describe."""
    values: dict[str, Any] = {}
    objects: dict[str, dict[str, Any]] = {name: {} for name in _OBJECTS}
    pieces: dict[str, dict[int, str]] = {}
    for name, raw in data.items():
        owner = _object_of(name)
        if owner is not None:
            part = name[len(_OBJECTS[owner]):]
            objects[owner][part] = _object_value(part, raw)
        elif (pieced := _pieced_of(name)) is not None:
            pieces.setdefault(pieced, {})[int(name[len(_PIECED[pieced]):])] = raw
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
        elif name in _JOB_FIELDS:
            values[name] = raw or None
    values["metadata"] = values.get("metadata") or {}
    for owner, parts in objects.items():
        values[owner] = parts or None
    for pieced, numbered in pieces.items():
        joined = "".join(numbered[i] for i in sorted(numbered))
        values[pieced] = (json.loads(joined) if joined else None) if pieced in _JSON_FIELDS else joined
    return Job(**values)


def _pieces(text: str) -> list[str]:
    """``text`` cut into pieces of at most ``_PIECE_BYTES`` bytes of UTF-8, never inside a character."""
    data, pieces, start = text.encode(), [], 0
    while start < len(data):
        end = min(start + _PIECE_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a character's later byte: cut before its first
            end -= 1
        pieces.append(data[start:end].decode())
        start = end
    return pieces


def _pieced_of(field_name: str) -> str | None:
    """Which field kept in pieces a record field is a piece of (``prompt_3``: the prompt); None for another."""
    for name, prefix in _PIECED.items():
        if field_name.startswith(prefix) and field_name[len(prefix):].isdigit():
            return name
    return None


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
