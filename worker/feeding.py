"""The worker's feeder: moves work into RQ as soon as it joins a line.

A callback puts its job in the download line and wakes one worker's feeder (``WorkLines.wait_for_work``),
which moves the jobs whose turn it is into RQ (``enqueueing.feed``); the callback's answer waits for none
of it. Lanes feed too, each time one of them ends a task. The feeder also feeds once a second unwoken: work
added while every feeder was busy is never left waiting for the next addition.
"""

from __future__ import annotations

from fluxhook.lifecycle.steps.enqueueing import feed
from fluxhook.services import Services

from .loops import Loop

# How long one wait for new work lasts before the feeder feeds anyway and looks whether to stop.
WAIT = 1.0


class Feeder(Loop):
    """Feeds RQ from the work lines whenever work is added (or a second passes), until ``stop()``."""

    def __init__(self, svc: Services):
        super().__init__("fluxhook-feed")
        self.svc = svc

    def stop(self, timeout: float = WAIT + 5.0) -> None:
        super().stop(timeout)

    def step(self) -> float:
        self.svc.store.work.wait_for_work(WAIT)
        feed(self.svc)
        return 0.0


def start(svc: Services) -> Feeder:
    """Start the worker's feeder thread."""
    feeder = Feeder(svc)
    feeder.start()
    return feeder
