"""Why a ``queued`` job waits: the reasons' words, what each means, and the rule that names the reason of
a job waiting in line for a BFL slot (pure).

Two kinds of wait, told apart by where the job stands:

* **In line** for a slot (``Place.LINE``): the reason is read from the slots as they are now, never written, so
  no dispatch pays for it: the job's app key holds its ``max_active`` (``key_max_active``), storage is behind and
  new sends wait for it to catch up (``storage``, ``until`` about when), every BFL account it
  may use cools down (``account_cooling``, ``until`` the first recovers), BFL said it is full
  and the pool pauses (``bfl_capacity``, ``until`` the pause ends), its model's own limit is reached
  (``model_limit``), or every one of ``BFL_MAX_ACTIVE``'s slots is taken (``bfl_slots``). When several hold, the
  first of that list is named: the key's own limit would still hold it back with BFL's room free.
* **Out of line** (``Place.ASIDE``): the budget keeps it aside (the day's credits, its key's, its end user's, or a
  price to settle first), or its end user's ``max_active`` does; the reason is recorded on the job when the wait begins, with
  ``until`` when known, and goes with the job's move out of ``queued``.

A job holding a slot (``Place.SLOT``) waits for nothing: it is being sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fluxhook.core import job as st
from fluxhook.core.job import iso


class WaitReason(StrEnum):
    """Why a queued job is not at BFL yet."""

    BFL_SLOTS = "bfl_slots"
    MODEL_LIMIT = "model_limit"
    KEY_MAX_ACTIVE = "key_max_active"
    KEY_DAILY_CREDITS = "key_daily_credits"
    DAILY_CREDITS = "daily_credits"
    BUDGET_SETTLING = "budget_settling"
    BFL_CAPACITY = "bfl_capacity"
    # Every BFL account the job may use cools down after BFL's refusals.
    ACCOUNT_COOLING = "account_cooling"
    # Its app key's limit of its end user's jobs at BFL at once (``end_user_limits.max_active``).
    END_USER_MAX_ACTIVE = "end_user_max_active"
    # Its app key's daily credits for its end user are spent for today (``end_user_limits.daily_credits``).
    END_USER_DAILY_CREDITS = "end_user_daily_credits"
    # Storage is behind: the results BFL finished and fluxhook has not stored would take too long to store
    # (core/pacing.py); new sends go as it catches up.
    STORAGE = "storage"


# Each reason in words, for the dashboard and the command line.
DESCRIPTIONS: dict[WaitReason, str] = {
    WaitReason.BFL_SLOTS: "every BFL slot (BFL_MAX_ACTIVE) is taken",
    WaitReason.MODEL_LIMIT: "its model's own limit at BFL (BFL_MODEL_LIMITS) is reached",
    WaitReason.KEY_MAX_ACTIVE: "its app key has max_active jobs at BFL",
    WaitReason.KEY_DAILY_CREDITS: "its app key's daily_credits are spent for today",
    WaitReason.DAILY_CREDITS: "today's credits (BFL_DAILY_CREDIT_LIMIT) are spent",
    WaitReason.BUDGET_SETTLING: "it goes alone, once the prices of the submissions under way are known",
    WaitReason.BFL_CAPACITY: "BFL said it is full (429 or 503)",
    WaitReason.ACCOUNT_COOLING: "every BFL account it may use cools down after BFL's refusals (503, 5xx, 402)",
    WaitReason.END_USER_MAX_ACTIVE: "its end user has as many jobs at BFL as its app key lets one (max_active)",
    WaitReason.END_USER_DAILY_CREDITS: "its end user's daily_credits with its app key are spent for today",
    WaitReason.STORAGE: "storage is behind: the results not yet stored would take too long to store before their "
                        "URLs lapse (STORE_PACING_SHARE); sends go on as it catches up",
}


def describe(reason: str) -> str:
    """A reason's description; '' for a word this release does not know."""
    try:
        return DESCRIPTIONS[WaitReason(reason)]
    except ValueError:
        return ""


@dataclass(frozen=True)
class Waiting:
    """Why a job waits, and until when (epoch seconds) when that is known."""

    reason: WaitReason
    until: float | None = None

    def to_api(self) -> dict:
        """The job JSON's ``waiting``: ``{"reason", "until"?}``, ``until`` only when known."""
        shown: dict = {"reason": str(self.reason)}
        if self.until is not None:
            shown["until"] = iso(self.until)
        return shown

    @classmethod
    def recorded(cls, reason: str | None, until: float | None) -> "Waiting | None":
        """The wait a job record keeps (None without one, or with a word this release does not know)."""
        try:
            return cls(WaitReason(reason), until) if reason else None
        except ValueError:
            return None


class Place(StrEnum):
    """Where a queued job stands in the slots."""

    SLOT = "slot"  # it holds a slot: being sent, it waits for nothing
    LINE = "line"  # in its owner's line in its pool
    ASIDE = "aside"  # out of line: the budget holds it back


@dataclass(frozen=True)
class LineState:
    """What decides whether a job in line could take a slot now: its owner's slots (read only with a limit) and
    ``max_active`` (None: no limit of its own), its pool's slots and limit, ``BFL_MAX_ACTIVE``, and when the pool's
    pause ends (None: not paused), over the accounts it may use that take tasks; when the first of those
    accounts recovers, when every one cools down (None: one takes tasks); and whether sends wait for storage."""

    owner_held: int
    owner_cap: int | None
    pool_held: int
    pool_limit: int
    total_limit: int
    paused_until: float | None = None
    cooling_until: float | None = None
    # What waits for storage (core/pacing.py): "all" (every send), "bulk" (batch items), None (nothing); and about
    # when batch items may go again (None: unknown).
    storage: str | None = None
    storage_until: float | None = None


def in_line(state: LineState, now: float, bulk: bool = False) -> Waiting:
    """The reason a job in line waits, from the slots as they are (the module's doc gives the order); ``bulk``: a
    batch item's."""
    if state.owner_cap is not None and state.owner_held >= state.owner_cap:
        return Waiting(WaitReason.KEY_MAX_ACTIVE)
    if state.storage == "all" or (state.storage == "bulk" and bulk):
        return Waiting(WaitReason.STORAGE, state.storage_until)
    if state.cooling_until is not None:
        return Waiting(WaitReason.ACCOUNT_COOLING, state.cooling_until)
    if state.paused_until is not None and state.paused_until > now:
        return Waiting(WaitReason.BFL_CAPACITY, state.paused_until)
    if state.pool_limit < state.total_limit and state.pool_held >= state.pool_limit:
        return Waiting(WaitReason.MODEL_LIMIT)
    # Every slot taken; or there is room, and a dispatcher gives it one in a moment (in its owner's turn).
    return Waiting(WaitReason.BFL_SLOTS)


def waiting(status: str, place: Place, line: LineState | None, recorded: Waiting | None, now: float,
            bulk: bool = False) -> Waiting | None:
    """Why a job waits: None unless it is ``queued`` and waits (not while it holds a slot); in line, the slots say
    (``line``; ``bulk``: a batch item's); out of line, its ``recorded`` wait does."""
    if status != st.QUEUED or place is Place.SLOT:
        return None
    if place is Place.LINE and line is not None:
        return in_line(line, now, bulk)
    return recorded
