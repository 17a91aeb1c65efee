"""The worker's checkers: a bounded set of threads that run the sweep's checks (``lifecycle.checking``), fluxhook's own
work, not RQ's.

Each BFL account has ``size`` checkers of its own (WORKER_CHECK_CONCURRENCY), its part of the process's hands: a check
polls BFL through its job's account, and an account whose polls BFL answers slowly (each bounded by a whole-exchange
deadline) so holds only its own checkers, while another account's checks are taken as if it were idle.

One thread, the check dispatcher, takes checks from the accounts' check lines (``store.check_line``: turns across keys
over every line, a key's single jobs before its batch items) only while a checker of their account is free to run one
at once, and hands each to a checker; with nothing to take for the accounts with room it waits on the lines' wake-up
(``Keys.check_added``), which the sweep pushes as it adds checks, which a take that leaves checks in line pushes again
for another process's dispatcher, and which a checker of a full account pushes as it ends (``Pool.nudge``). A check is
held by its claim, nothing else: one cut off (a stop, a killed process) is due again once its claim lapses
(``holds.CLAIM_LEASE``).
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
    """The check dispatcher and ``size`` checkers for each BFL account, until ``stop()``."""

    def __init__(self, svc: Services, wakes: Wakes, size: int):
        self.accounts = svc.store.checks.accounts
        hands = size * len(self.accounts)
        super().__init__("fluxhook-check-dispatch", ThreadPoolExecutor(hands, thread_name_prefix="fluxhook-check"),
                         hands, part_size=size)
        self.svc = svc
        self.wakes = wakes
        # With no check in line it waits as long as a wait lasts: the sweep pushes a wake-up with every check it adds,
        # and the process's guard (worker/guarding.py) finds a check whose wake-up was lost.
        self._lines = Watched(present=tuple(map(svc.store.keys.check_line, self.accounts)))

    def step(self) -> float:
        rooms = self.rooms(self.accounts)
        room = sum(rooms.values())
        if room == 0:
            return WAKE_TIMEOUT if self._stopping else 0.0
        freed = self.freed
        checks = take_checks(self.svc, room, rooms)
        for check in checks:
            self.hand(self._check, check, part=check.account)
        if len(checks) < room:
            with self.resting(freed) as rest:
                woken = self.wakes.wait(self.wakes.keys.check_added, LONGEST_WAIT, self._lines) if rest else None
            if woken == WORK and self._stopping:
                self.wakes.give_back(self.wakes.keys.check_added)  # another process's dispatcher takes the checks
        return 0.0

    def nudge(self) -> None:
        try:
            self.wakes.give_back(self.wakes.keys.check_added)
        except RedisError:
            pass  # the dispatcher's own wait ends with Redis, and the account's checks stay in line for it

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
