"""The worker's sweep: a thread of every worker process that runs the fallback sweep (``lifecycle.sweep``) once a
second while its indexes hold anything, until the process stops.

Every process runs one, so the sweep goes on however workers are scaled and whichever of them die. Sweeps side by
side are harmless: what a sweep hands on it first claims atomically, moved a lease ahead (due jobs, deadlines,
outbox members, messages due, moving work), so no two sweeps take the same thing, and what a sweep that died had
claimed comes due again once its lease is over. A thread, not an RQ task queued every second: the task's
queueing, RQ's records of it and a lane's turn cost Redis about seven times what the sweep itself does.

At rest nothing in its indexes comes due within a claim's lease (one round trip says so, ``Store.sweep_firsts``): it
waits on the sweepers' wake-up list (``Keys.sweep_added``, ``store.wakes``) until the first due time it saw, so work held
for a reason (a day's credits: until the day turns) costs no sweep a second while it sleeps. The step that makes a job
the first one due or with a deadline pushes that list, whichever process made it (a web's send or track, a dispatcher's
send, a Cancel-After, a raised limit's wake of held jobs); what nothing announces (work a process that died left moving,
a batch whose making or cut was cut short, a due time moved earlier) and a wake-up lost, the process's guard finds in
its indexes within ``WAKE_GUARD_SECONDS`` (worker/guarding.py); it sweeps again once a second from the look that finds
something due soon.
"""

from __future__ import annotations

import time

from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.core.live import SWEEP_INTERVAL
from fluxhook.lifecycle.sweep import sweep
from fluxhook.services import Services
from fluxhook.store.wakes import LONGEST_WAIT, WORK, Wakes, Watched

from .loops import Loop

# While its indexes hold something, how often it looks again whether they still do, once a sweep found nothing due: a
# look a second would add a command to each of the sweeps that run while jobs are about.
HOLDING_LOOK = 5.0
# It rests only while nothing comes due sooner than this: the job flow's own due times (a poll, a download's check, a
# send's or a claim's lease) are all within it, so the due times it moves come with a sweeper awake.
REST_BEYOND = CLAIM_LEASE


class Sweeper(Loop):
    """Runs the sweep every ``SWEEP_INTERVAL`` seconds until ``stop()``; at rest, waits for work."""

    def __init__(self, svc: Services, wakes: Wakes):
        super().__init__("fluxhook-sweep")
        self.svc = svc
        self.wakes = wakes
        self._holding = False  # whether its indexes held anything at its last look
        self._rare = True  # whether the deadlines' and batches' may hold something (Store.sweep_work)
        self._next_look = 0.0

    def step(self) -> float:
        started = time.monotonic()
        if not self._holding or started >= self._next_look:
            firsts = self.svc.store.sweep_firsts()
            self._holding, self._rare = any(f is not None for f in firsts), any(f is not None for f in firsts[1:])
            self._next_look = started + HOLDING_LOOK
            first = min((f for f in firsts if f is not None), default=None)
            if first is None or first - time.time() > REST_BEYOND:
                self._rest(firsts, first)
                return 0.0
        report = sweep(self.svc, rare=self._rare)
        self._rare = report.rare
        if report.found:
            self._next_look = started + HOLDING_LOOK  # busy: no look whether to rest
        return max(0.0, SWEEP_INTERVAL - (time.monotonic() - started))

    def _rest(self, firsts: tuple[float | None, ...], first: float | None) -> None:
        """Wait until ``first``, the first due time of its indexes (``firsts``, each index's; None: until woken); the
        guard meanwhile looks for an entry before it, or in an index that held none."""
        keys = self.svc.store.sweep_keys
        watched = Watched(present=tuple(key for key, at in zip(keys, firsts, strict=True) if at is None),
                          earlier=tuple((key, first) for key, at in zip(keys, firsts, strict=True)
                                        if at is not None and first is not None))
        timeout = LONGEST_WAIT if first is None else first - time.time()
        # A wake-up pushed after the look above waits in its list: the wait below ends at once.
        with self.waiting():
            woken = self.wakes.wait(self.wakes.keys.sweep_added, timeout, watched)
        self._next_look = 0.0  # woken or at its time: it looks first, and rests again if nothing is due yet
        if self.stopping and woken == WORK:
            self.wakes.give_back(self.wakes.keys.sweep_added)  # another process's sweeper follows it up
