"""Job statuses and the rules for moving between them (pure; applied atomically by ``store.jobs``)."""

from __future__ import annotations

from typing import NamedTuple

QUEUED, SUBMITTED, READY, STORED = "queued", "submitted", "ready", "stored"
FAILED, MODERATED, EXPIRED = "failed", "moderated", "expired"

STATUSES = (QUEUED, SUBMITTED, READY, STORED, FAILED, MODERATED, EXPIRED)
TERMINAL = frozenset({STORED, FAILED, MODERATED, EXPIRED})
ACTIVE = tuple(s for s in STATUSES if s not in TERMINAL)

# Every allowed move; anything else (above all, any move out of a terminal status) is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({SUBMITTED, FAILED}),
    SUBMITTED: frozenset({READY, FAILED, MODERATED, EXPIRED}),
    # Back to submitted only when BFL's own answer refutes the Ready report the job acted on.
    READY: frozenset({STORED, FAILED, MODERATED, EXPIRED, SUBMITTED}),
    STORED: frozenset(),
    FAILED: frozenset(),
    MODERATED: frozenset(),
    EXPIRED: frozenset(),
}

# BFL's own status words, canonical spelling.
BFL_PENDING, BFL_READY, BFL_ERROR, BFL_FAILED = "Pending", "Ready", "Error", "Failed"
BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED = "Request Moderated", "Content Moderated"
BFL_TASK_NOT_FOUND = "Task not found"
BFL_FAILURES = frozenset({BFL_ERROR, BFL_FAILED, BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED, BFL_TASK_NOT_FOUND})

_SPELLINGS = {
    "pending": BFL_PENDING, "processing": BFL_PENDING, "queued": BFL_PENDING, "running": BFL_PENDING,
    "ready": BFL_READY, "success": BFL_READY, "succeeded": BFL_READY,
    "error": BFL_ERROR,
    "failed": BFL_FAILED, "failure": BFL_FAILED,
    "request moderated": BFL_REQUEST_MODERATED,
    "content moderated": BFL_CONTENT_MODERATED,
    "task not found": BFL_TASK_NOT_FOUND,
}


def can_transition(current: str, new: str) -> bool:
    """Whether a job in ``current`` may move to ``new``."""
    return new in TRANSITIONS.get(current, frozenset())


def sources_for(new: str) -> tuple[str, ...]:
    """Every status a job may move to ``new`` from."""
    return tuple(s for s in STATUSES if can_transition(s, new))


class Consequences(NamedTuple):
    """What a job's move to a status does besides the move itself."""

    # BFL is done with the task: its slot is free for the next job.
    free_slot: bool
    # The job no longer waits for a slot (a line holds queued jobs only).
    leave_line: bool
    # The job never changes again: never due for the sweep, into the notification outbox, BFL's URLs dropped.
    terminal: bool


def consequences(new: str) -> Consequences:
    """What moving a job to ``new`` does with it (``''``: no move, fields only)."""
    return Consequences(free_slot=new == READY or new in TERMINAL, leave_line=new != "", terminal=new in TERMINAL)


def normalize_bfl_status(word: str) -> str | None:
    """BFL's status in canonical spelling, whatever its case, ``_`` or ``-``; None if unknown."""
    key = " ".join(str(word).replace("_", " ").replace("-", " ").lower().split())
    return _SPELLINGS.get(key)


def terminal_outcome(bfl_status: str) -> tuple[str, str, str]:
    """For a confirmed BFL failure word: the job status, error code and message it ends with."""
    if bfl_status in (BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED):
        return MODERATED, "moderated", f"BFL refused the task: {bfl_status}"
    if bfl_status == BFL_TASK_NOT_FOUND:
        return FAILED, "task_not_found", "BFL does not know this task"
    return FAILED, "bfl_error", "BFL reported that the generation failed"
