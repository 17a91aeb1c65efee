"""A running job, live: what it shows of BFL's reports never moves backwards, and how fresh it is (pure).

BFL's reports of one task come by two roads (polls and callbacks) that may cross, and a poll answered by another
of BFL's hosts may be older than the last one: a job that showed ``Reasoning 0.32`` must not show ``Pending`` after
it. ``shown`` is the rule: the word a job records never returns to an earlier running word, its progress never
decreases, and a word that ends the task is never held back.

How fresh: a running job that someone watches (a stream, ``Prefer: wait``, the drop-in's ``get_result``, its
dashboard page) has BFL's word within ``WATCHED_WITHIN`` seconds, any other within ``UNWATCHED_WITHIN``. The poll
schedule (``lifecycle.steps.schedule``) keeps those promises with the intervals below; the sweep that hands due
jobs to checks runs every second, so a poll comes at most about a second after its time.
"""

from __future__ import annotations

from typing import NamedTuple

from fluxhook.core.job import BFL_PENDING, is_running

# The promises.
WATCHED_WITHIN = 3.0
UNWATCHED_WITHIN = 15.0
# The sweep hands due jobs to checks once a second (worker.sweeping), so a job is polled up to that long after it
# comes due.
SWEEP_INTERVAL = 1.0
# A watched running job's polls begin at most this far apart, the sweep's second included: it comes due
# WATCHED_POLL_DUE after a poll began (or its task was sent), and the sweep's next round after that polls it. The
# longest gap, a check's run and a reader's look stay under WATCHED_WITHIN; on average a poll a second, as the
# sweep's rounds fall (BFL's own examples poll every half second), for watched jobs only.
WATCHED_POLL_INTERVAL = 1.5
WATCHED_POLL_DUE = WATCHED_POLL_INTERVAL - SWEEP_INTERVAL
# Any other running job at most this far apart (the schedule's jitter of ±20 % included: at most 12 s, then the
# sweep's second), from this long after its submission: a task done sooner (most images) is never polled, its
# callback comes first.
UNWATCHED_POLL_INTERVAL = 10.0
# How long one look at a job keeps it watched: a stream, a waiting request or an app polling get_result looks
# again well within it.
WATCH_SECONDS = 10.0

# BFL's running words in the order a task goes through them (FLUX 3 video: Pending, Reasoning, Generating).
# A word BFL adds later has no place here: it is never held back, and only Pending is earlier than it.
_ORDER = {BFL_PENDING.casefold(): 0, "reasoning": 1, "generating": 2}


class Shown(NamedTuple):
    """What a running job shows of its task: BFL's word and progress (0-1, or None when BFL gave none)."""

    bfl_status: str | None
    progress: float | None


def shown(current: Shown, report: Shown) -> Shown:
    """What a job showing ``current`` shows once BFL's ``report`` comes: the report's word unless it is a running
    word earlier than the current one, and the greater progress (a report without one keeps the current)."""
    if report.bfl_status is None or not is_running(report.bfl_status):
        return report  # the task ended (or was refuted): never held back
    if current.bfl_status is None or not is_running(current.bfl_status):
        return report  # nothing running shown yet to go back from
    word = current.bfl_status if earlier(report.bfl_status, current.bfl_status) else report.bfl_status
    progresses = [p for p in (current.progress, report.progress) if p is not None]
    return Shown(word, max(progresses) if progresses else None)


def earlier(word: str, than: str) -> bool:
    """Whether running word ``word`` comes before running word ``than`` in a task's life (any case)."""
    rank, rank_than = _ORDER.get(word.casefold()), _ORDER.get(than.casefold())
    if rank is None or word.casefold() == than.casefold():
        return False
    if rank_than is None:
        return rank == 0  # Pending comes before any word BFL adds; the others' place among them is unknown
    return rank < rank_than
