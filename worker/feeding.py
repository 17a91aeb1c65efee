"""The worker's feeds: moving work into RQ as soon as it joins a line, a kind of the process's dispatcher
(worker/dispatcher.py) with no hands of its own: its take is the feed.

A callback puts its job in the download line and wakes one worker's dispatcher for a feed (``Keys.work_added``), which
moves the jobs whose turn it is into RQ (``enqueueing.feed``); the callback's answer waits for none of it. (With no work
in any line and room in RQ, its turn is now: the callback queues the task itself, and no dispatcher is woken.) Lanes
feed too, each time one of them takes a task (the take makes room in RQ's queue; a task's end makes none), while the
process's last feed found work in a line (``WORK_MAY_WAIT``; ``worker.run.download_taken``). Feeds wait on their
wake-up list alone: an addition made while it fed left its item in the list, so the next wait ends at once, and while a
line holds work the lanes' feeds at their takes move it as RQ's queue makes room. With every line empty (at rest) the
wait lasts as long as a wait does, the process's guard (worker/guarding.py) finding work in a line whose wake-up was
lost.
"""

from __future__ import annotations

import threading
from typing import Any

from fluxhook.lifecycle.steps.enqueueing import feed
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, Watched

from .dispatcher import Kind, Taken
from .loops import ACTIVITY

# How long one wait lasts while a line may hold work: work added wakes a dispatcher, and a lane that takes a task feeds;
# this bound is for a line another process's feed found holding work, this process's lanes' to feed again within it.
IDLE_WAKE_TIMEOUT = 5.0


# Set while a work line may hold work, as this process's last feed found (and before its first): one shared by the
# dispatcher's feeds and the lanes.
WORK_MAY_WAIT = threading.Event()
WORK_MAY_WAIT.set()
# Counts the feeds that found work, so a feed that found none clears the mark only if none found work since it began
# (a lane's feed ending after the dispatcher's that found new work must not say the lines are empty).
_found = [0]
_found_lock = threading.Lock()


def feed_noted(svc: Services) -> int:
    """Feed RQ from the work lines (``enqueueing.feed``), noting whether any line held work; how many moved."""
    with _found_lock:
        began = _found[0]
    fed = feed(svc)
    with _found_lock:
        if not fed.idle:
            _found[0] += 1
            WORK_MAY_WAIT.set()
        elif _found[0] == began:
            WORK_MAY_WAIT.clear()
    return fed.moved


class Feeds(Kind):
    """Feeds RQ from the work lines whenever work is added."""

    def __init__(self, svc: Services):
        super().__init__("feed", svc.store.keys.work_added)
        self.svc = svc
        self._lines = Watched(present=svc.store.work.line_keys())

    def take(self, rooms: dict[Any, int]) -> Taken:
        if feed_noted(self.svc) > 0:
            ACTIVITY.noted()
        if WORK_MAY_WAIT.is_set():
            return Taken(wait=IDLE_WAKE_TIMEOUT)
        return Taken(wait=LONGEST_WAIT, watched=self._lines)
