"""When the fallback sweep looks at a job again (pure).

A ``submitted`` job is first polled ``CALLBACK_GRACE_SECONDS`` after BFL accepted it, or ``UNWATCHED_POLL_INTERVAL``
(10 s) after if that is sooner, then at intervals that start at a quarter of the grace period (at least 1 s) and
grow by half each time up to ``UNWATCHED_POLL_INTERVAL``, each jittered by ±20 % so a burst of jobs does not poll in
step: what BFL reports reaches a running job within 15 s (docs/api.md "Live"). With the default 45 s grace that is polls
at about 10, 20, 30 s..., until BFL answers (its callback: a task done within 10 s, most images, is never polled) or
``POLL_DEADLINE`` has passed (then ``failed`` / ``timeout``). While someone watches the job
(``lifecycle.watching``), ``WATCHED_POLL_DUE`` after each poll began instead, unjittered (a watched job is one of
few): the sweep's next round begins the next, so polls begin at most ``WATCHED_POLL_INTERVAL`` apart.
"""

from __future__ import annotations

import random

from fluxhook.core.bfl_limits import TASK_DEADLINE as POLL_DEADLINE
from fluxhook.core.live import UNWATCHED_POLL_INTERVAL, WATCHED_POLL_DUE

MAX_POLL_INTERVAL = UNWATCHED_POLL_INTERVAL
GROWTH = 1.5
JITTER = 0.2
# How long after a job turned ready the sweep first checks that its download is queued or running
# (crash repair): a download is under way within a second or two, and one lost to a crash, or to a
# Redis primary that failed over with its last writes, should not wait a minute to run again.
READY_FIRST_CHECK = 15.0
# Then how often, while the job stays ready (a long video download, a backlog behind slow storage).
READY_RECHECK = 60.0


def poll_interval(polls_made: int, grace: float, rng: random.Random | None = None) -> float:
    """Seconds between poll number ``polls_made`` and the next one (``polls_made`` >= 1)."""
    base = max(1.0, grace / 4)
    interval = min(MAX_POLL_INTERVAL, base * GROWTH ** max(0, polls_made - 1))
    return interval * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def next_poll_at(submitted_at: float, polls_made: int, now: float, grace: float,
                 rng: random.Random | None = None, *, watched: bool = False) -> float:
    """When to poll next after ``polls_made`` polls (the first is due as ``catalog.first_poll_at`` says), the last
    begun at ``now`` (``watched``: someone watches the job), never later than the deadline (so the timeout is on time)."""
    at = now + (WATCHED_POLL_DUE if watched else poll_interval(polls_made, grace, rng))
    return min(at, submitted_at + POLL_DEADLINE)


def timed_out(submitted_at: float, now: float) -> bool:
    """Whether a job BFL accepted at ``submitted_at`` has had its hour."""
    return now >= submitted_at + POLL_DEADLINE


def rate_limited_until(now: float, retry_after: float | None, polls_made: int, grace: float,
                       rng: random.Random | None = None) -> float:
    """When to poll after BFL answered 429: no sooner than its Retry-After, nor than the usual schedule."""
    return now + max(retry_after or 0.0, poll_interval(max(1, polls_made), grace, rng))
