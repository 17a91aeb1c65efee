"""The worker's cron thread, a thread of the worker process: RQ's cron queues retention hourly; RQ's scheduler moves
retries whose wait is over back onto their queues.

Each worker runs one. A thread, not the child processes RQ would fork: each child would be another interpreter in the
dyno's memory, and a thread cannot outlive its worker, even one killed with SIGKILL.

At rest it costs Redis next to nothing: RQ's own scheduler looks for due retries every second; this thread
waits instead until the earliest retry RQ holds is due (``queues.earliest_retry``), the cron's next job or its next beat,
on the wake-up a lane pushes when it schedules a retry for later (``queues.retry_scheduled``), so a retry that comes due
sooner than the one waited for is seen at once. It takes RQ's scheduler's locks only to move the retries due, and
gives them back: one process moves them, whichever comes first.
"""

from __future__ import annotations

import logging
import math
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from fluxhook.core.config import Config
from fluxhook.core.holds import FAILED_TASK_KEPT, HOUR, PURGE_QUEUED_TTL, PURGE_RESULT_KEPT, PURGE_TIMEOUT
from fluxhook.store.queues import QUEUE_NAME, earliest_retry, retries_watched
from fluxhook.store.wakes import STOPPED, TIMEOUT, WORK, Wakes

from .loops import RETRY_INTERVAL, Loop
from .retention import purge

log = logging.getLogger("fluxhook.worker")

RETENTION_INTERVAL = HOUR
# How often the cron tells RQ's registry of cron schedulers it is alive: RQ counts one silent for 120 s as gone.
CRON_HEARTBEAT_INTERVAL = 90


class CronThread(Loop):
    """RQ's cron and RQ's scheduler of delayed jobs, stepped in one thread (a ``run`` of its own) until ``stop()``."""

    def __init__(self, config: Config, connection: Redis, queue_names: list[str], wakes: Wakes):
        super().__init__("fluxhook-cron")
        self.config = config
        self.connection = connection
        self.queue_names = queue_names
        self.wakes = wakes
        self.cron: CronScheduler | None = None
        self.scheduler: RQScheduler | None = None
        # When the earliest retry RQ holds is due (Unix time; None: none), as last read: read again when a lane says it
        # scheduled one, and once it is due.
        self._retry_due: float | None = None
        self._retry_known = False

    def run(self) -> None:
        next_cron_beat = 0.0
        while not self._stop_event.is_set():
            try:
                if self.cron is None or self.scheduler is None:
                    self.cron, self.scheduler = self._start()
                if self.cron.enqueue_jobs():
                    self.cron.save()  # when each job ran last, for RQ's view of the cron
                if time.monotonic() >= next_cron_beat:
                    self.cron.heartbeat()
                    next_cron_beat = time.monotonic() + CRON_HEARTBEAT_INTERVAL
                wait = min(self.cron.calculate_sleep_interval(), next_cron_beat - time.monotonic(),
                           self._move_retries())
            except RedisError as exc:
                # Outlives a Redis outage: the next step tries again.
                log.warning("worker cron lost Redis; trying again", extra={"error": type(exc).__name__})
                self._retry_known = False
                wait = RETRY_INTERVAL
            try:
                woken = self._wait(wait)
            except RedisError as exc:
                # A wait cut by a lost Redis (a failover) must not end the thread, or no retry would move again; the
                # retries RQ holds are read again, for a lane's wake-up may be gone with the old primary.
                log.warning("worker cron lost Redis while it waited; trying again", extra={"error": type(exc).__name__})
                self._retry_known = False
                woken = STOPPED if self._stop_event.wait(RETRY_INTERVAL) else TIMEOUT
            if woken == STOPPED:
                break
        self._finish()

    def _move_retries(self) -> float:
        """Move the retries due into their queues, under RQ's scheduler's locks; how long until the next is due."""
        assert self.scheduler is not None
        if not self._retry_known:
            self._retry_due, self._retry_known = earliest_retry(self.connection, self.queue_names), True
        if self._retry_due is None:
            return math.inf
        # RQ moves those due by its whole-second clock: one due at 12.4 s moves from 13 s on.
        left = math.ceil(self._retry_due) - time.time()
        if left > 0:
            return left
        if not self.scheduler.acquire_locks():
            return RETRY_INTERVAL  # another process's cron is moving them now
        try:
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
        self._retry_due = earliest_retry(self.connection, self.queue_names)
        if self._retry_due is None:
            return math.inf
        # One still due was not moved (a clock a second apart from Redis's): looked at again a second later.
        return max(math.ceil(self._retry_due) - time.time(), RETRY_INTERVAL)

    def _wait(self, seconds: float) -> str:
        """Wait ``seconds``, or until a lane schedules a retry (its due time read again then) or the process stops."""
        # The guard (worker/guarding.py) looks meanwhile for a retry due sooner whose wake-up was lost.
        watched = retries_watched(self.connection, self.queue_names, self._retry_due) if self._retry_known else None
        woken = self.wakes.wait(self.wakes.keys.retry_added, seconds, watched)
        if woken == WORK:
            if self._stop_event.is_set():
                self.wakes.give_back(self.wakes.keys.retry_added)  # another process's cron moves it
                return STOPPED
            self._retry_known = False
        return STOPPED if self._stop_event.is_set() else woken

    def _start(self) -> tuple[CronScheduler, RQScheduler]:
        cron = CronScheduler(connection=self.connection, logging_level=self.config.log_level)
        cron.register(purge, QUEUE_NAME, interval=RETENTION_INTERVAL, ttl=PURGE_QUEUED_TTL,
                      job_timeout=PURGE_TIMEOUT, result_ttl=PURGE_RESULT_KEPT, failure_ttl=FAILED_TASK_KEPT)
        cron.register_birth()
        # Not registered as a running scheduler (its record would need a beat every 15 s): it holds its locks only
        # while it moves retries.
        scheduler = RQScheduler(self.queue_names, connection=self.connection, logging_level=self.config.log_level)
        return cron, scheduler

    def _finish(self) -> None:
        try:
            if self.scheduler is not None:
                self.scheduler.release_locks()
            if self.cron is not None:
                self.cron.register_death()
        except RedisError:
            pass  # the registries expire the entries by themselves


def start(config: Config, connection: Redis, queue_names: list[str], wakes: Wakes) -> CronThread:
    """Start the worker's cron thread; ``wakes`` its waits (their connection's socket timeout outlasting a minute)."""
    thread = CronThread(config, connection, queue_names, wakes)
    thread.start()
    log.info("worker cron started")
    return thread
