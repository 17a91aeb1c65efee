"""Ending a job before it ends by itself (pure): the ``Cancel-After`` header it may be made with, and the status a
cancel or a passed deadline ends it in.

A job not yet sent to BFL ends without ever being sent: a caller's cancel makes it ``canceled``, its deadline
``aborted`` (never sent, never charged). A job BFL has (``submitted``, ``ready``) ends ``canceled`` either way:
BFL has no cancel, so its charge stays recorded, and its result is never downloaded. A terminal job stays as it is.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from fluxhook.core import job as st
from fluxhook.core.errors import InvalidCancelAfter

HEADER = "Cancel-After"
MIN_SECONDS = 5
MAX_SECONDS = 24 * 3600
# `30s`, `5m`, `1h30m`, `1h5m10s`: hours, minutes, seconds in that order, each a whole number, at least one.
_DURATION = re.compile(r"(?:([0-9]{1,5})h)?(?:([0-9]{1,7})m)?(?:([0-9]{1,9})s)?")
_EXAMPLES = "such as 30s, 5m or 1h30m"


def parse_cancel_after(text: str) -> int:
    """The seconds a ``Cancel-After`` value names; ``InvalidCancelAfter`` (400) for a malformed one or one outside
    ``MIN_SECONDS`` to ``MAX_SECONDS``."""
    value = text.strip().lower()
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise InvalidCancelAfter(f"{HEADER} must be a duration in hours, minutes and seconds, {_EXAMPLES}; "
                                 f"got {text[:40]!r}")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not MIN_SECONDS <= total <= MAX_SECONDS:
        raise InvalidCancelAfter(f"{HEADER} must be from {MIN_SECONDS}s to 24h; got {text[:40]!r} "
                                 f"({total:,} seconds)")
    return total


class Ending(NamedTuple):
    """How a job that is ended on purpose ends: its status and its error."""

    status: str
    code: str
    message: str


# Error codes of a job ended on purpose.
CANCELED_CODE, DEADLINE_CODE = "canceled", "deadline_exceeded"

CANCELED_UNSENT = Ending(st.CANCELED, CANCELED_CODE, "canceled before it was sent to BFL; nothing was charged")
CANCELED_SENT = Ending(st.CANCELED, CANCELED_CODE, "canceled after it was sent to BFL, which has no cancel: its "
                                                   "charge stays and its result is not downloaded")
ABORTED_AT_DEADLINE = Ending(st.ABORTED, DEADLINE_CODE, "its deadline (Cancel-After) passed before it was sent to "
                                                        "BFL; nothing was charged")
CANCELED_AT_DEADLINE = Ending(st.CANCELED, DEADLINE_CODE, "its deadline (Cancel-After) passed before its result was "
                                                          "stored; BFL's charge stays and its result is not downloaded")
BATCH_CANCELED_CODE = "batch_canceled"
ABORTED_WITH_BATCH = Ending(st.ABORTED, BATCH_CANCELED_CODE, "its batch was canceled before it was sent to BFL; nothing "
                                                             "was charged")
# Statuses of a job BFL has: it ends canceled either way, its charge kept.
_SENT = (st.SUBMITTED, st.READY)


def cancel_ending(status: str) -> Ending | None:
    """How a caller's cancel ends a job in ``status``; None if it has ended already."""
    if status == st.QUEUED:
        return CANCELED_UNSENT
    return CANCELED_SENT if status in _SENT else None


def deadline_ending(status: str) -> Ending | None:
    """How a passed deadline (``Cancel-After``) ends a job in ``status``; None if it has ended already."""
    if status == st.QUEUED:
        return ABORTED_AT_DEADLINE
    return CANCELED_AT_DEADLINE if status in _SENT else None


def batch_cancel_ending(status: str) -> Ending | None:
    """How its batch's cancel ends an item in ``status`` (docs/api.md as amended): unsent, ``aborted``; None for one BFL
    has (it is paid for whatever happens, so it goes on and its result is stored as any item's) or one ended."""
    return ABORTED_WITH_BATCH if status == st.QUEUED else None


def passed(deadline: float | None, now: float) -> bool:
    """Whether a job's ``deadline`` (None: it has none) has passed at ``now``."""
    return deadline is not None and now >= deadline
