"""A job (pure): its record, what fluxhook knows of one task, and its id; its statuses and the rules for moving between
them (applied atomically by ``store.jobs``), with what BFL's status words mean for them, and the status a job ended on
purpose (a caller's cancel, its ``Cancel-After`` deadline) ends in."""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import NamedTuple

from fluxhook.core.errors import InvalidCancelAfter

# --- Statuses and their moves ---


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
    return new in TRANSITIONS.get(current, frozenset())


def sources_for(new: str) -> tuple[str, ...]:
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


# --- Ending on purpose ---
# A job ended before it ends by itself: the ``Cancel-After`` header it may be made with, and the status a cancel or a
# passed deadline ends it in. A job not yet sent to BFL ends without ever being sent: a caller's cancel makes it
# ``canceled``, its deadline ``aborted`` (never sent, never charged). A job BFL has (``submitted``, ``ready``) ends
# ``canceled`` either way: BFL has no cancel, so its charge stays recorded, and its result is never downloaded. A
# terminal job stays as it is.

CANCEL_AFTER = "Cancel-After"
MIN_CANCEL_AFTER = 5
MAX_CANCEL_AFTER = 24 * 3600
# `30s`, `5m`, `1h30m`, `1h5m10s`: hours, minutes, seconds in that order, each a whole number, at least one.
_DURATION = re.compile(r"(?:([0-9]{1,5})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,9})s)?")
_EXAMPLES = "such as 30s, 5m or 1h30m"


def parse_cancel_after(text: str) -> int:
    """The seconds a ``Cancel-After`` value names; ``InvalidCancelAfter`` (400) for a malformed one or one outside
    ``MIN_CANCEL_AFTER`` to ``MAX_CANCEL_AFTER``."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise InvalidCancelAfter(f"{CANCEL_AFTER} must be a duration in hours, minutes and seconds, {_EXAMPLES}; "
                                 f"got {text[:40]!r}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not MIN_CANCEL_AFTER <= total <= MAX_CANCEL_AFTER:
        raise InvalidCancelAfter(f"{CANCEL_AFTER} must be from {MIN_CANCEL_AFTER}s to 24h; got {text[:40]!r} "
                                 f"({total:,} seconds)")
    return total


class Ending(NamedTuple):
    """How a job that is ended on purpose ends: its status and its error."""

    status: str
    code: str
    message: str


# Error codes of a job ended on purpose.
CANCELED_CODE, DEADLINE_CODE = "canceled", "deadline_exceeded"

CANCELED_UNSENT = Ending(CANCELED, CANCELED_CODE, "canceled before it was sent to BFL; nothing was charged")
CANCELED_SENT = Ending(CANCELED, CANCELED_CODE, "canceled after it was sent to BFL, which has no cancel: its charge stays "
                                                "and its result is not downloaded")
ABORTED_AT_DEADLINE = Ending(ABORTED, DEADLINE_CODE, "its deadline (Cancel-After) passed before it was sent to BFL; "
                                                     "nothing was charged")
CANCELED_AT_DEADLINE = Ending(CANCELED, DEADLINE_CODE, "its deadline (Cancel-After) passed before its result was "
                                                       "stored; BFL's charge stays and its result is not downloaded")
BATCH_CANCELED_CODE = "batch_canceled"
ABORTED_WITH_BATCH = Ending(ABORTED, BATCH_CANCELED_CODE, "its batch was canceled before it was sent to BFL; nothing "
                                                         "was charged")
# Statuses of a job BFL has: it ends canceled either way, its charge kept.
_SENT = (SUBMITTED, READY)


def cancel_ending(status: str) -> Ending | None:
    """How a caller's cancel ends a job in ``status``; None if it has ended already."""
    if status == QUEUED:
        return CANCELED_UNSENT
    return CANCELED_SENT if status in _SENT else None


def deadline_ending(status: str) -> Ending | None:
    """How a passed deadline (``Cancel-After``) ends a job in ``status``; None if it has ended already."""
    if status == QUEUED:
        return ABORTED_AT_DEADLINE
    return CANCELED_AT_DEADLINE if status in _SENT else None


def batch_cancel_ending(status: str) -> Ending | None:
    """How its batch's cancel ends an item in ``status`` (docs/api.md): unsent, ``aborted``; None for one BFL
    has (it is paid for whatever happens, so it goes on and its result is stored as any item's) or one ended."""
    return ABORTED_WITH_BATCH if status == QUEUED else None


def deadline_passed(deadline: float | None, now: float) -> bool:
    """Whether a job's ``deadline`` (None: it has none) has passed at ``now``."""
    return deadline is not None and now >= deadline


# --- The record ---

_JOB_ID = re.compile(r"^job_[0-9A-HJKMNP-TV-Z]{26}$")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
COUNTERS = ("webhooks", "polls", "downloads")
BFL_URL_FIELDS = ("result_url", "polling_url", "draft_cache_source")
# The record's field that says a callback body came before the job's task was known, kept beside it
# (``store/kept_callbacks.py``): its submission takes the body only then.
EARLY_KEPT = "early_kept"
# The record's field that says until when someone watches the job (``store/watching.py``).
WATCHED_UNTIL = "watched_until"
# What a record keeps no longer once its job has ended: BFL's URLs of its task (``draft_cache_source`` stays, for the
# draft cache's download after the end), and what only a running job needs: its running word (the drop-in's until
# the file is stored), whether its Ready proved itself, its usage bookkeeping (counted with its end), the flag of a
# callback body kept for its submission and its watch mark.
ENDED_DROPS = ("result_url", "polling_url", "bfl_running", "ready_proven", "usage_day", "counted_credits",
               "counted_spend", EARLY_KEPT, WATCHED_UNTIL)
# What an ended job still holding its slot keeps of those until it gives the slot back (``steps/running_on.py``): the
# sweep polls its task where BFL said to.
HOLD_KEEPS = ("polling_url",)
# Those that open a result while they live (their ``sig=``): sealed as they are kept (``fluxhook.core.signing``).
SEALED_FIELDS = ("result_url", "draft_cache_source")
# How much of the task's prompt a job keeps.
MAX_PROMPT_CHARS = 2000
# The last id value made in this process, for each spacing of ids (``spaced_id``).
_last_values: dict[int, int] = {}
_id_lock = threading.Lock()


def new_job_id(now: float | None = None) -> str:
    """A ULID-style id: 48 bits of milliseconds then 80 random bits, so ids sort by creation time.

    Within one process ids are also strictly increasing, even for two made in the same millisecond.
    """
    return spaced_id(now, 1)


def spaced_id(now: float | None, spacing: int) -> str:
    """An id as ``new_job_id`` makes one, its value a multiple of ``spacing``: the ``spacing`` - 1 values above it are
    no other id's of that spacing (a batch's, whose items' ids are those values), nor, but by a chance of 2**-65, a
    job's (each spacing keeps its own last value, so no job id is one above a batch's)."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | (int.from_bytes(os.urandom(10), "big") // spacing * spacing)
    with _id_lock:
        last = _last_values.get(spacing, 0)
        if value <= last and millis == last >> 80:
            value = last + spacing
        _last_values[spacing] = value
    return _encode_id(value)


def job_id_floor(when: float) -> str:
    """The smallest job id that could be made at ``when``: every id made earlier sorts below it."""
    return _encode_id(int(when * 1000) << 80)


def _encode_id(value: int) -> str:
    # 26 Crockford digits of 5 bits each, the most significant first.
    return "job_" + "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


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
    # BFL's last progress (0-1) while the task runs (kept once it ended: the job JSON shows it only while it runs).
    progress: float | None = None
    # BFL's last running word (Pending, Reasoning, Generating...), kept once BFL said the task ended: the drop-in's
    # get_result shows it until the file is stored, never going back to Pending meanwhile.
    bfl_running: str | None = None
    source: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    completed_at: float | None = None
    # When the job ends unless it has ended by then (``Cancel-After``, ``parse_cancel_after``); None: never.
    deadline: float | None = None
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
    # The store its files went to (``Storage.location``: ``file:///abs/path``, ``s3://bucket/prefix``), recorded as
    # they are stored: a job whose store is no longer the configured one says where they are (``storage.elsewhere``).
    # None for a job stored before this was recorded.
    stored_in: str | None = None
    # The stored image's small preview (see ``thumbnails``); None if there is none.
    thumbnail_key: str | None = None
    # The BFL slot pool of a job fluxhook submits (see ``slots``); None for tracked jobs.
    pool: str | None = None
    # The BFL account that sent its task (``core.accounts``), its polls and callbacks go through; None until one
    # did. ``route``: the accounts it may use, as its key and request narrowed them (None: any).
    account: str | None = None
    route: str | None = None
    # When its submission's answer never came (it may be at BFL): it then waits for BFL's callback (``reconciling``).
    uncertain_at: float | None = None
    # When a DELETE came for it while BFL ran its task (it held a slot): it ended as a cancel ends it, and its record,
    # files and notifications go once it gives the slot back (``lifecycle/removal.py``, ``steps/erasing.py``).
    delete_asked_at: float | None = None
    # Where the job JSON is POSTed once the job is terminal (see ``notify``); None: nowhere.
    notify_url: str | None = None
    # When that notification was delivered (a 2xx answer); bookkeeping, not part of the job's state.
    notified_at: float | None = None
    # A job made through the BFL-compatible API may name the app's own webhook (see ``lifecycle.steps.app_webhooks``):
    # where the get_result JSON is POSTed once the job is terminal, the app's secret for it, sealed
    # with SECRET_KEY (never kept in the clear), and when that call was delivered.
    app_webhook_url: str | None = None
    app_webhook_secret: str | None = field(default=None, repr=False)
    app_notified_at: float | None = None
    # Provenance: the task's input.prompt (cut to MAX_PROMPT_CHARS, kept after the input
    # goes), BFL's seed from the result, and BFL's price: credits and megapixels, each None if BFL never said.
    prompt: str | None = None
    seed: int | None = None
    cost_credits: float | None = None
    cost_input_mp: float | None = None
    cost_output_mp: float | None = None
    # Usage bookkeeping (see ``fluxhook.credits.accounting``): the UTC day the job's counters live under (set when
    # fluxhook submitted it), and the micro-credits counted there as its credits and as budget spend.
    usage_day: str | None = None
    # The app key that created the job (see ``fluxhook.app_keys``); None for an admin token's.
    key_id: str | None = None
    # The app's own user the job was made for (``core.end_users``): opaque, never sent to BFL; None: none was named.
    # Its key's turns are taken in turns between its end users (``store/lua/fair_turns.lua``).
    end_user: str | None = None
    # Its end user's daily credits as its key set them when the job was made, which its submission's budget asks
    # (``credits.budget``); None: no such limit.
    end_user_daily_credits: float | None = None
    # And its end user's max_active: at most that many of its end user's jobs at BFL at once, its sends wait aside
    # meanwhile (``steps/end_user_limits.py``); None: no such limit.
    end_user_max_active: int | None = None
    # The batch the job is an item of (``core/batch.py``), and its place among the batch's items; None: a single job.
    batch_id: str | None = None
    batch_index: int | None = None
    counted_credits: int | None = None
    counted_spend: int | None = None
    # While a large input waits in storage: what its request asks for (``budget.Size.encode``),
    # so the budget's check needs no read of the input.
    input_size: str | None = None
    # While the job waits out of line for a reason the slots cannot tell (the budget's, BFL's refusal): that
    # reason (``wait_reasons.WaitReason``) and when it ends, if known; both go with its move out of ``queued``.
    waiting_reason: str | None = None
    waiting_until: float | None = None
    # With traces on (``core.tracing``): the W3C traceparent of the span that created the job, the parent of
    # every later step's span, in whichever process, so the job is one trace. None with traces off.
    traceparent: str | None = None
    webhooks: int = 0
    polls: int = 0
    downloads: int = 0

    def __post_init__(self) -> None:
        if self.prompt is None and self.input:
            self.prompt = prompt_of(self.input)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def tracked(self) -> bool:
        """Whether the job follows a task submitted elsewhere (``POST /v1/jobs/track``), the only kind the static
        callback URL may change: every job fluxhook submits has a slot pool, a tracked one never."""
        return self.pool is None

    def cost(self) -> dict | None:
        """``cost`` as the API shows it: credits and megapixels (each None if unknown); None if BFL said nothing."""
        parts = {"credits": self.cost_credits, "input_mp": self.cost_input_mp, "output_mp": self.cost_output_mp}
        return parts if any(v is not None for v in parts.values()) else None

    def to_api(self, image_url: str | None = None, *, video_url: str | None = None, poster_url: str | None = None,
               draft_cache_url: str | None = None, waiting: dict | None = None) -> dict:
        """The job object, as the API shows it; ``waiting`` is why it waits (``wait_reasons.Waiting.to_api``), only
        while it is ``queued``."""
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
            "deadline": iso(self.deadline),
            "image": image,
            "error": self.error,
            "metadata": self.metadata,
            "attempts": {"webhooks": self.webhooks, "polls": self.polls, "downloads": self.downloads},
            "prompt": self.prompt,
            "seed": self.seed,
            # Only while the task runs at BFL.
            "progress": self.progress if self.status in (QUEUED, SUBMITTED) else None,
            "video": video,
            "draft_cache": draft_cache,
            "cost": self.cost(),
            "key_id": self.key_id,
            "end_user": self.end_user,
            "batch_id": self.batch_id,
            "batch_index": self.batch_index,
            "account": self.account,
            "waiting": waiting if self.status == QUEUED else None,
        }


def prompt_of(task_input: dict | None) -> str | None:
    """The task's ``input.prompt`` as a job keeps it: its first ``MAX_PROMPT_CHARS`` characters; None if none."""
    prompt = (task_input or {}).get("prompt")
    if not isinstance(prompt, str) or not prompt:
        return None
    return prompt[:MAX_PROMPT_CHARS]


def prompt_warnings(task_input: dict | None) -> list[str]:
    """What the caller should know about how the job keeps ``input.prompt``: a word when it is cut."""
    prompt = (task_input or {}).get("prompt")
    if isinstance(prompt, str) and len(prompt) > MAX_PROMPT_CHARS:
        return [f"input.prompt is {len(prompt):,} characters: BFL gets all of it, but the job's 'prompt' keeps "
                f"only the first {MAX_PROMPT_CHARS:,}"]
    return []

