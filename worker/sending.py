"""The worker's senders: a bounded set of threads that keeps BFL's slots busy.

BFL takes about a second to answer a submission, and a task holds its slot for seconds to minutes, so one process must
have several submissions under way at once to keep an account's slots full. A slot is taken only when a sender is free
to send its job at once: the job whose turn it is (``submitting.take_turns``, the slots' one fair-share rule) is handed a
slot and sent in the same breath, so no slot is held by a job waiting for a free worker.

Each BFL account has ``size`` senders of its own (WORKER_SEND_CONCURRENCY), its part of the process's hands: an
account whose submissions hang (each bounded by a whole-exchange deadline) holds only its own, and another account's
jobs are sent as if it were idle.

The process's dispatcher (worker/dispatcher.py) does the taking, sends being one of its kinds: while some of an
account's senders are free it takes turns, no more of the account's jobs than it has senders free (``Slots.dispatch``),
and hands each job to a sender of its account; with nothing to take, ``Sends.take`` says how long to wait. Queued jobs
wait in the slots' lines in Redis, not in RQ: a sender that dies with its process leaves a job holding a slot that is
not at BFL, and the sweep's check puts it back in line once its submission's lease is over
(``checking._restart_submission``), or reconciles it when it may have reached BFL.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis.exceptions import RedisError

from fluxhook.core.errors import FluxhookError
from fluxhook.core.holds import SEND_STOP_TIMEOUT
from fluxhook.lifecycle.submitting import submit_queued, take_turns
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, Watched

from .dispatcher import WAKE_TIMEOUT, Kind, Taken
from .loops import ACTIVITY

log = logging.getLogger("fluxhook.worker")

# How long sends wait while jobs wait that go only when a slot frees (full slots, an owner's max_active, a route): a
# slot that frees wakes a dispatcher, as a job joining a line with room does, and a key's share changed. This bound is
# for what comes with no wake-up: a job whose budget wait ended, a migration's, a wake-up lost with a Redis that failed
# over.
IDLE_WAKE_TIMEOUT = 5.0
# How often a dispatch first frees the slots held past their lease (a job that never ended: SLOT_LEASE is its task's
# hour and more); the dispatches between, one per freed slot under load, leave them (a command a pool each).
LAPSED_LOOK_EVERY = 5.0


class Sends(Kind):
    """Sends: ``size`` senders for each BFL account (WORKER_SEND_CONCURRENCY, 16 by default: an account of 24 slots
    whose submissions take 1 s and tasks 8 s needs about 3, and a sender is a thread made only once that many sends were
    under way at once); a stop lets the submissions under way finish (BFL may be charging for them)."""

    def __init__(self, svc: Services, size: int):
        accounts = tuple(account.name for account in svc.config.accounts)
        super().__init__("send", svc.store.keys.slot_freed, accounts, size,
                         ThreadPoolExecutor(size * len(accounts), thread_name_prefix="fluxhook-send"),
                         SEND_STOP_TIMEOUT, cut_by_stop=True)
        self.svc = svc
        # When the next dispatch frees the slots held past their lease (time.monotonic()).
        self._next_lapsed_look = 0.0
        self._lines = Watched(present=svc.slots.line_keys())

    def take(self, rooms: dict[Any, int]) -> Taken:
        free = sum(rooms.values())
        now = time.monotonic()
        free_lapsed = now >= self._next_lapsed_look
        if free_lapsed:
            self._next_lapsed_look = now + LAPSED_LOOK_EVERY
        turns = take_turns(self.svc, free, free_lapsed=free_lapsed, senders=rooms)
        jobs = [(turns.accounts[job_id], job_id) for job_id in turns.jobs]
        if len(jobs) == free:
            return Taken(jobs)
        # Nothing more may go now: wait for a slot to free, a job to join a line, or a sender of an account whose
        # senders were all busy to end. At rest (no job in any line) the guard looks at the lines for a wake-up lost.
        if turns.on_timer:  # a cooldown or a pause holds a job back: its end pushes no wake-up
            return Taken(jobs, WAKE_TIMEOUT)
        return Taken(jobs, IDLE_WAKE_TIMEOUT) if turns.waiting else Taken(jobs, LONGEST_WAIT, self._lines)

    def run(self, part: Any, item: str) -> None:
        try:
            submit_queued(self.svc, item, str(part))
        except (FluxhookError, RedisError) as exc:
            # submit_queued has put the job back in line or failed it; this only says so.
            log.warning("submission did not reach BFL", extra={"job_id": item, "error": type(exc).__name__})
        except Exception:
            log.exception("submission failed", extra={"job_id": item})
        finally:
            ACTIVITY.noted()  # a job sent: its balance reader at rest follows it up
