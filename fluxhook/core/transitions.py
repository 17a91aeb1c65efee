"""Job statuses and the rules for moving between them (pure; applied atomically by ``store.jobs``)."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Status(StrEnum):
    """A job's status, as the API shows it."""

    QUEUED = "queued"
    SUBMITTED = "submitted"
    READY = "ready"
    STORED = "stored"
    FAILED = "failed"
    MODERATED = "moderated"
    EXPIRED = "expired"
    # Ended on purpose: the caller canceled it, or its deadline passed after it was sent (BFL's charge stays).
    CANCELED = "canceled"
    # Its deadline passed before it was sent: never sent, never charged.
    ABORTED = "aborted"


# The statuses by name, for the rules below and their readers (``st.STORED``).
QUEUED, SUBMITTED, READY, STORED = Status.QUEUED, Status.SUBMITTED, Status.READY, Status.STORED
FAILED, MODERATED, EXPIRED = Status.FAILED, Status.MODERATED, Status.EXPIRED
CANCELED, ABORTED = Status.CANCELED, Status.ABORTED

STATUSES = tuple(Status)
TERMINAL = frozenset({STORED, FAILED, MODERATED, EXPIRED, CANCELED, ABORTED})
ACTIVE = tuple(s for s in STATUSES if s not in TERMINAL)

# Every allowed move; anything else (above all, any move out of a terminal status) is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({SUBMITTED, FAILED, CANCELED, ABORTED}),
    SUBMITTED: frozenset({READY, FAILED, MODERATED, EXPIRED, CANCELED}),
    # Back to submitted only when BFL's own answer refutes the Ready report the job acted on.
    READY: frozenset({STORED, FAILED, MODERATED, EXPIRED, SUBMITTED, CANCELED}),
    STORED: frozenset(),
    FAILED: frozenset(),
    MODERATED: frozenset(),
    EXPIRED: frozenset(),
    CANCELED: frozenset(),
    ABORTED: frozenset(),
}

# BFL's own status words, canonical spelling.
BFL_PENDING, BFL_READY, BFL_ERROR, BFL_FAILED = "Pending", "Ready", "Error", "Failed"
BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED = "Request Moderated", "Content Moderated"
BFL_TASK_NOT_FOUND = "Task not found"
BFL_FAILURES = frozenset({BFL_ERROR, BFL_FAILED, BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED, BFL_TASK_NOT_FOUND})

_SPELLINGS = {
    # Only BFL's own words and its webhooks' spellings of them: any other word (Processing, Queued...) is one BFL
    # added, kept as sent, not taken for Pending.
    "pending": BFL_PENDING,
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
    # It ends while BFL may still run its task (BFL has no cancel): if BFL has the task (the job is ``submitted``), the
    # slot stays held instead of freed, and the sweep goes on polling the task, until BFL says the task ended or its
    # hour is over (docs/api.md, ``steps/running_on.py``).
    hold_slot: bool = False


def consequences(new: str, *, task_runs: bool = False) -> Consequences:
    """What moving a job to ``new`` does with it (``''``: no move, fields only). ``task_runs``: BFL may still run the
    job's task (it ends on purpose, by a cancel or its deadline): an end keeps the slot of a job BFL has, for BFL
    still counts the task against the account's slots."""
    return Consequences(free_slot=new == READY or new in TERMINAL, leave_line=new != "", terminal=new in TERMINAL,
                        hold_slot=task_runs and new in TERMINAL)


def normalize_bfl_status(word: str) -> str | None:
    """BFL's status in canonical spelling, whatever its case, ``_`` or ``-``; None if unknown."""
    key = " ".join(str(word).replace("_", " ").replace("-", " ").lower().split())
    return _SPELLINGS.get(key)


# bfl_status keeps a word BFL adds (FLUX 3 video's Reasoning, Generating) as sent, this long at most.
MAX_BFL_STATUS = 40


def bfl_status_word(raw: str) -> str | None:
    """BFL's status as a job records it: canonical when known, else BFL's own word, trimmed and cut to
    ``MAX_BFL_STATUS`` characters (without control characters); None when there is no word at all."""
    known = normalize_bfl_status(raw)
    if known is not None:
        return known
    word = " ".join("".join(c for c in str(raw)[:4 * MAX_BFL_STATUS] if c.isprintable()).split())
    return word[:MAX_BFL_STATUS].strip() or None


def is_running(bfl_status: str) -> bool:
    """Whether BFL's word means the task still runs: any word but Ready and the failure words."""
    return bfl_status != BFL_READY and bfl_status not in BFL_FAILURES


def status_label(bfl_status: str) -> str:
    """A metric label for BFL's word: the known words in snake case, any other one ``running``."""
    if bfl_status == BFL_READY or bfl_status in BFL_FAILURES or bfl_status == BFL_PENDING:
        return bfl_status.lower().replace(" ", "_")
    return "running"


def progress_value(value: object) -> float | None:
    """BFL's ``progress`` as a fraction from 0 to 1 (a percentage is read as one); None if it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        return None
    if value > 1:
        value = value / 100 if value <= 100 else 1.0
    return round(float(value), 4)


def terminal_outcome(bfl_status: str) -> tuple[str, str, str]:
    """For a confirmed BFL failure word: the job status, error code and message it ends with."""
    if bfl_status in (BFL_REQUEST_MODERATED, BFL_CONTENT_MODERATED):
        return MODERATED, "moderated", f"BFL refused the task: {bfl_status}"
    if bfl_status == BFL_TASK_NOT_FOUND:
        return FAILED, "task_not_found", "BFL does not know this task"
    return FAILED, "bfl_error", "BFL reported that the generation failed"
