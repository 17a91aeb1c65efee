"""The worker's checkers: a bounded set of threads that run the sweep's checks (``lifecycle.checking``), fluxhook's own
work, not RQ's.

One thread, the check dispatcher, takes checks from the check line (``store.check_line``: turns across keys, a key's
single jobs before its batch items) only while a checker is free to run one at once, and hands each to a checker; with
nothing to take it waits on the check line's wake-up (``Keys.check_added``), which the sweep pushes as it adds checks,
and a take that leaves checks in line pushes again for another process's dispatcher. A check is held by its claim,
nothing else: one cut off (a stop, a killed process) is due again once its claim lapses (``holds.CLAIM_LEASE``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from redis.exceptions import RedisError

from fluxhook.core.errors import FluxhookError
from fluxhook.lifecycle.checking import check_job, take_checks
from fluxhook.services import Services
from fluxhook.store.check_line import Check
from fluxhook.store.wakes import LONGEST_WAIT, WORK, Wakes, Watched

from .activity import ACTIVITY
from .pool import WAKE_TIMEOUT, Pool

log = logging.getLogger("fluxhook.worker")



class Checkers(Pool):
    """The check dispatcher and its ``size`` checkers, until ``stop()``."""

    def __init__(self, svc: Services, wakes: Wakes, size: int):
        super().__init__("fluxhook-check-dispatch", ThreadPoolExecutor(size, thread_name_prefix="fluxhook-check"), size)
        self.svc = svc
        self.wakes = wakes
        # With no check in line it waits as long as a wait lasts: the sweep pushes a wake-up with every check it adds,
        # and the process's guard (worker/guarding.py) finds a check whose wake-up was lost.
        self._line = Watched(present=(svc.store.keys.check_line,))

    def step(self) -> float:
        free = self.free_hands()
        if free == 0:
            return WAKE_TIMEOUT if self._stopping else 0.0
        checks = take_checks(self.svc, free)
        for check in checks:
            self.hand(self._check, check)
        if len(checks) < free:
            with self.waiting():
                woken = self.wakes.wait(self.wakes.keys.check_added, LONGEST_WAIT, self._line)
            if woken == WORK and self._stopping:
                self.wakes.give_back(self.wakes.keys.check_added)  # another process's dispatcher takes the checks
        return 0.0

    def _check(self, check: Check) -> None:
        try:
            outcome = check_job(self.svc, check.job_id, check.claim)
            log.debug("job checked", extra={"job_id": check.job_id, "outcome": outcome})
        except (FluxhookError, RedisError) as exc:
            # The job is due again: at its next poll (checking reschedules it before raising), else once its claim
            # lapses.
            log.warning("check failed", extra={"job_id": check.job_id, "error": type(exc).__name__})
        except Exception:
            log.exception("check failed", extra={"job_id": check.job_id})
        finally:
            ACTIVITY.noted()  # a job checked: its balance reader at rest follows it up


def start(svc: Services, wakes: Wakes, size: int) -> Checkers:
    """Start the worker's check dispatcher and its ``size`` checkers; ``wakes`` the dispatcher's waits."""
    checkers = Checkers(svc, wakes, size)
    checkers.start()
    return checkers
