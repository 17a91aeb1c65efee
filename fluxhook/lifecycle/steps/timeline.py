"""A job's timeline: what happened to it (callbacks, polls, submissions, downloads), for the dashboard.

Each entry is a small JSON object on a capped Redis list (``store.timeline``), newest first, added
with other work in one step (``entry``) or on its own (``record``). Recording never raises: the
timeline must not fail the work it describes. The list expires with the job record.
"""

from __future__ import annotations

import json
import logging
import math
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from fluxhook.core.wait_reasons import in_line
from fluxhook.store.effects import AddTimelineEntry
from fluxhook.store.slots import line_state

if TYPE_CHECKING:
    from fluxhook.services import Services
    from fluxhook.store import Store
    from fluxhook.store.timeline import TimelineStore

log = logging.getLogger("fluxhook.events")


class Kind(StrEnum):
    """Every kind of entry a timeline holds. The dashboard has a sentence for each (``receiver.dashboard_words``),
    so a kind is added here first: an entry of any other kind is refused."""

    SUBMISSION = "submission"
    WAITING = "waiting"
    CALLBACK = "callback"
    POLL = "poll"
    DOWNLOAD = "download"
    DRAFT_CACHE = "draft_cache"


def entry(job_id: str, kind: str, at: float | None = None, **detail: Any) -> AddTimelineEntry:
    """Entry ``kind`` (a ``Kind``) with ``detail``, as of ``at`` (now by default), as an effect to add with other
    work; ValueError for a kind that is not one."""
    # Milliseconds, cut rather than rounded: a time rounded up could place the entry after what it led to (a
    # poll's answer after the job's end, stamped a fraction of a millisecond later).
    at = math.floor((time.time() if at is None else at) * 1000) / 1000
    text = json.dumps({"at": at, "kind": str(Kind(kind)), **detail}, separators=(",", ":"), default=str)
    return AddTimelineEntry(job_id, text)


def record(svc: "Services", job_id: str, kind: str, **detail: Any) -> None:
    """Append entry ``kind`` with ``detail`` to the job's timeline now."""
    try:
        svc.store.effects.apply([entry(job_id, kind, **detail)])
    except (RedisError, TypeError, ValueError) as exc:
        log.warning("event not recorded", extra={"job_id": job_id, "kind": kind, "error": type(exc).__name__})


def recent(timelines: "TimelineStore", job_id: str) -> list[dict]:
    """The job's entries, oldest first (the newest ones the timeline keeps)."""
    entries = []
    for raw in reversed(timelines.newest(job_id)):
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("at"), (int, float)):
            entries.append(_named_wait(item))
    return entries


def _named_wait(item: dict) -> dict:
    """A waiting entry that kept what held its job back (``line``: a job made in line, ``lua/job_record.lua``) with
    the reason named from it as of the entry's time, the job's creation, as its maker named it (``waits.of_joined``)."""
    line = item.pop("line", None)
    if isinstance(line, list):
        try:
            # Its maker read the state for this very job (a single job's holds no wait of batch items for storage).
            item.update(in_line(line_state(line), item["at"], bulk=True).to_api())
        except (TypeError, ValueError):
            pass  # a state this release cannot read: the entry says it waited, not why
    return item


def forget(store: "Store", job_id: str) -> None:
    """Drop the job's timeline (with the job); a failure only leaves it to expire."""
    try:
        store.timeline.forget(job_id)
    except RedisError as exc:
        log.warning("events not removed", extra={"job_id": job_id, "error": type(exc).__name__})
