"""The worker's feeder: moves work into RQ as soon as it joins a line.

A callback puts its job in the download line and wakes one worker's feeder (``WorkLines.wait_for_work``),
which moves the jobs whose turn it is into RQ (``enqueueing.feed``); the callback's answer waits for none
of it. (With no work in any line and room in RQ, its turn is now: the callback queues the task itself, and no
feeder is woken.) Lanes feed too, each time one of them takes a task (the take makes room in RQ's queue; a task's end
makes none), while the process's last feed found work in a line (``WORK_MAY_WAIT``): with every line empty a lane's
feed would find nothing, at every take. The feeder waits on
the wake-up list alone: an addition made while it fed left its item in the list, so its next wait ends at once, and
while a line holds work the lanes' feeds at their takes move it as RQ's queue makes room. It feeds unwoken only
five seconds after a feed while a line may hold work (``IDLE_WAKE_TIMEOUT``): so a line another process's feeder found
holding work is this process's lanes' to feed again within those five seconds. With every line empty (at rest) its
wait lasts as long as a wait does: only an addition, which wakes it, ends it sooner, or the process's guard
(worker/guarding.py), which finds work in a line whose wake-up was lost.
"""

from __future__ import annotations

import threading

from fluxhook.lifecycle.steps.enqueueing import feed
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, WORK, Wakes, Watched

from .activity import ACTIVITY
from .loops import Loop

# How long a stop waits for the feeder's loop beyond its feed.
WAKE_TIMEOUT = 1.0
# How long one wait lasts while a line may hold work: work added wakes a feeder, and a lane that ends a task feeds; this
# bound is for a line another process's feeder found holding work.
IDLE_WAKE_TIMEOUT = 5.0


# Set while a work line may hold work, as this process's last feed found (and before its first): one shared by the
# feeder and the lanes.
WORK_MAY_WAIT = threading.Event()
WORK_MAY_WAIT.set()
# Counts the feeds that found work, so a feed that found none clears the mark only if none found work since it began
# (a lane's feed ending after the feeder's that found new work must not say the lines are empty).
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


def after_take(svc: Services) -> None:
    """What a lane does as it takes a task: room in RQ's queue, fed from the lines if one may hold work."""
    if WORK_MAY_WAIT.is_set():
        feed_noted(svc)


class Feeder(Loop):
    """Feeds RQ from the work lines whenever work is added, until ``stop()``."""

    def __init__(self, svc: Services, wakes: Wakes):
        super().__init__("fluxhook-feed")
        self.svc = svc
        self.wakes = wakes
        # Whether the next step feeds before it waits: until a feed has answered since the last wait began. A wait or
        # a feed cut by a lost Redis may have taken a wake-up whose work nothing else announces again (a failover
        # loses what its old primary held; a feed that failed moved nothing), so the step after it looks first
        # rather than resting on a wake-up that is gone until the guard finds its work. So does its first step: work a
        # process before it left in a line moves at once, and a feeder with none rests from its start.
        self._look_first = True
        self._lines = Watched(present=svc.store.work.line_keys())

    def stop(self, timeout: float = WAKE_TIMEOUT + 5.0) -> None:
        super().stop(timeout)

    def step(self) -> float:
        if not self._look_first:
            self._look_first = True
            resting = not WORK_MAY_WAIT.is_set()
            wait = LONGEST_WAIT if resting else IDLE_WAKE_TIMEOUT
            with self.waiting():
                woken = self.wakes.wait(self.wakes.keys.work_added, wait, self._lines if resting else None)
            if self.stopping:
                if woken == WORK:
                    self.wakes.give_back(self.wakes.keys.work_added)  # another process's feeder moves it
                return 0.0
        moved = feed_noted(self.svc) > 0
        self._look_first = False
        if moved:
            ACTIVITY.noted()
        return 0.0


def start(svc: Services, wakes: Wakes) -> Feeder:
    """Start the worker's feeder thread; ``wakes`` its waits."""
    feeder = Feeder(svc, wakes)
    feeder.start()
    return feeder
