"""A batch: many jobs of one model made by one request, each item a job like any other, counted together.

Pure: the batch's id, its statuses, its object as the API shows it, and the one rule for its status. Its counts are
kept by the job's own steps as each item moves (``store/lua/batch_counts.lua``), so reading a batch costs the same
whatever its size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from fluxhook.core import job as st
from fluxhook.core.job import CROCKFORD, is_job_id, iso, job_id_floor, spaced_id
from fluxhook.core.wait_reasons import Waiting

MAX_ITEMS = 10_000
_BATCH_ID = re.compile(r"^bat_[0-9A-HJKMNP-TV-Z]{26}$")
# An item's job id is its batch's id with the item's index in its last ITEM_DIGITS digits, which a batch id leaves 0:
# so an item that keeps no record of its own (it ended unsent) still answers by its id, and its batch's items sort by
# their index (32**3 = 32,768 indexes, MAX_ITEMS of them used).
ITEM_DIGITS = 3
_ITEMS_ROOM = 32**ITEM_DIGITS


class BatchStatus(StrEnum):
    """A batch's status, as the API shows it."""

    RUNNING = "running"
    # Every item has ended.
    ENDED = "ended"
    # Its caller canceled it: no item not yet sent is sent (each ends aborted), those sent go on to their end; it
    # has ended (ended_at) once they have.
    CANCELED = "canceled"


def new_batch_id(now: float | None = None) -> str:
    """A batch id, ``bat_`` then 26 characters, sorting by creation time as job ids do, its last ``ITEM_DIGITS`` 0
    (its items' ids are there: ``item_job_id``)."""
    return "bat_" + spaced_id(now, _ITEMS_ROOM).removeprefix("job_")


def item_job_id(batch_id: str, index: int) -> str:
    """The job id of the ``index``-th item (0 the first) of the batch ``batch_id`` (one ``new_batch_id`` made)."""
    digits = "".join(CROCKFORD[(index >> shift) & 31] for shift in range(5 * (ITEM_DIGITS - 1), -5, -5))
    return "job_" + batch_id[4:-ITEM_DIGITS] + digits


def item_of(job_id: str) -> tuple[str, int] | None:
    """The batch id and index a job id would be ``item_job_id``'s of (whether that batch exists and has the item is for
    the store to say); None for a text that is no job id."""
    if not is_job_id(job_id):
        return None
    index = 0
    for digit in job_id[-ITEM_DIGITS:]:
        index = index * 32 + CROCKFORD.index(digit)
    return "bat_" + job_id[4:-ITEM_DIGITS] + "0" * ITEM_DIGITS, index


def derives_items(batch_id: str) -> bool:
    """Whether the batch's items have ``item_job_id``'s ids (a batch made before they did has its last digits set)."""
    return batch_id.endswith("0" * ITEM_DIGITS)


def batch_id_floor(when: float) -> str:
    """The smallest batch id that could be made at ``when``: every id made earlier sorts below it."""
    return "bat_" + job_id_floor(when).removeprefix("job_")


def is_batch_id(text: str) -> bool:
    """Whether ``text`` has the shape of a batch id (checked before it reaches a Redis key)."""
    return bool(_BATCH_ID.fullmatch(text or ""))


def status_of(ended_at: float | None, canceled_at: float | None) -> BatchStatus:
    """A batch's status: canceled once its caller canceled it (whatever its items do after), else ended once every
    item has ended, else running."""
    if canceled_at is not None:
        return BatchStatus.CANCELED
    return BatchStatus.ENDED if ended_at is not None else BatchStatus.RUNNING


@dataclass
class Batch:
    """One batch as stored: what its request asked for, and its items' counts by status."""

    id: str
    model: str
    total: int
    created_at: float
    key_id: str | None = None
    metadata: dict = field(default_factory=dict)
    # Where its batch.ended message goes (None: nowhere), and the job.* events its items' messages are asked for.
    notify_url: str | None = None
    notify_events: tuple[str, ...] = ()
    # Each status's count of its items (a status with none is left out), and what BFL charged for them so far.
    counts: dict[str, int] = field(default_factory=dict)
    cost_credits: float = 0.0
    # Its items BFL was sent (each paid for whatever follows: a cancel saves only the others).
    sent: int = 0
    ended_at: float | None = None
    canceled_at: float | None = None
    # The items its request asked for, and when its making stopped short of them (``interrupted``).
    asked: int = 0
    interrupted_at: float | None = None
    # Its creation's answer only, never kept: the fields of its items' inputs the model's schema does not know, each
    # sent as given (``{"index", "field", "message"}``, the first items' only).
    warnings: list[dict] = field(default_factory=list)
    # Why its queued items wait, when a reason holds them all (storage behind: ``storage``); None otherwise. Read with
    # the batch (``batching.get_batch``), never kept.
    waiting: Waiting | None = None

    @property
    def status(self) -> BatchStatus:
        return status_of(self.ended_at, self.canceled_at)

    @property
    def ended_items(self) -> int:
        return sum(n for status, n in self.counts.items() if status in st.TERMINAL)

    @property
    def progress(self) -> float:
        """Ended items over all of them, 0 to 1."""
        return round(self.ended_items / self.total, 4) if self.total else 1.0

    @property
    def error(self) -> dict | None:
        """Why it holds fewer items than asked for (``interrupted``); None for a batch made whole."""
        return interrupted(self.total, self.asked) if self.interrupted_at is not None else None

    def to_api(self) -> dict:
        """The batch object, as the API shows it."""
        return {
            "id": self.id,
            "model": self.model,
            "status": str(self.status),
            "counts": {**{s: self.counts.get(s, 0) for s in st.STATUSES}, "total": self.total},
            "cost": {"credits": round(self.cost_credits, 4)},
            "progress": self.progress,
            "sent": self.sent,
            "waiting": self.waiting.to_api() if self.waiting else None,
            "created_at": iso(self.created_at),
            "ended_at": iso(self.ended_at),
            "canceled_at": iso(self.canceled_at),
            "metadata": self.metadata,
            "key_id": self.key_id,
            "notify_url": self.notify_url,
            "notify_events": list(self.notify_events),
            "error": self.error,
            **({"warnings": self.warnings} if self.warnings else {}),
        }


def interrupted(made: int, asked: int) -> dict:
    """The error of a batch whose making stopped after ``made`` of the ``asked`` items (its web process died, or
    Redis failed it): it holds those and was canceled, so sending it again makes no item twice."""
    return {"code": "creation_interrupted",
            "message": f"this batch's creation stopped after {made:,} of its {asked:,} items, so it was canceled (the "
                       "items made end as a canceled batch's do): send the batch again"}
