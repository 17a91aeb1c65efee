"""The worker's checkers: a bounded set of threads that run the sweep's checks (``lifecycle.checking``), fluxhook's own
work, not RQ's.

Each BFL account has ``size`` checkers of its own (WORKER_CHECK_CONCURRENCY), its part of the process's hands: a check
polls BFL through its job's account, and an account whose polls BFL answers slowly (each bounded by a whole-exchange
deadline) holds only its own checkers, while another account's checks are taken as if it were idle.

The process's dispatcher (worker/dispatcher.py), checks being one of its kinds, takes checks in their turn from the
accounts' check lines (``store.check_line``) only while a checker of their account is free to run one at once, and hands
each to a checker; with nothing to take for the accounts with room, it waits on the lines' wake-up (``Keys.check_added``),
which the sweep pushes as it adds checks and a take that leaves checks in line pushes again for another process's
dispatcher. A check cut off (a stop, a killed process) is due again once its claim lapses (``holds.CLAIM_LEASE``).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.exceptions import RedisError

from fluxhook.core.errors import FluxhookError
from fluxhook.core.holds import IMMINENT_SHUTDOWN_DELAY
from fluxhook.lifecycle.checking import check_job, take_checks
from fluxhook.services import Services
from fluxhook.store.check_line import Check
from fluxhook.store.wakes import LONGEST_WAIT, Watched

from .dispatcher import Kind, Taken
from .loops import ACTIVITY

log = logging.getLogger("fluxhook.worker")


class Checks(Kind):
    """Checks: ``size`` checkers for each BFL account; a stop lets the checks under way run until the lanes hand their
    tasks back (a check cut off is due again once its claim lapses)."""

    def __init__(self, svc: Services, size: int):
        accounts = svc.store.checks.accounts
        super().__init__("check", svc.store.keys.check_added, tuple(accounts), size,
                         ThreadPoolExecutor(size * len(accounts), thread_name_prefix="fluxhook-check"),
                         IMMINENT_SHUTDOWN_DELAY, cut_by_stop=True)
        self.svc = svc
        # What the process's guard (worker/guarding.py) watches while no check is in line, for a wake-up lost.
        self._lines = Watched(present=tuple(map(svc.store.keys.check_line, accounts)))

    def take(self, rooms: dict[Any, int]) -> Taken:
        room = sum(rooms.values())
        checks = [(check.account, check) for check in take_checks(self.svc, room, rooms)]
        return Taken(checks) if len(checks) == room else Taken(checks, LONGEST_WAIT, self._lines)

    def run(self, part: Any, item: Check) -> None:
        try:
            outcome = check_job(self.svc, item.job_id, item.claim)
            log.debug("job checked", extra={"job_id": item.job_id, "outcome": outcome})
        except (FluxhookError, RedisError) as exc:
            # The job is due again: at its next poll (checking reschedules it before raising), else once its claim
            # lapses.
            log.warning("check failed", extra={"job_id": item.job_id, "error": type(exc).__name__})
        except Exception:
            log.exception("check failed", extra={"job_id": item.job_id})
        finally:
            ACTIVITY.noted()  # a job checked: its balance reader at rest follows it up
