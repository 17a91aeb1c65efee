"""The worker's cron thread, a thread of the worker process: RQ's cron queues retention hourly; RQ's scheduler moves
retries whose wait is over back onto their queues.

Each worker runs one; RQ lets one scheduler at a time hold a queue's lock. A thread, not the child processes RQ would
fork: each child would be another interpreter in the dyno's memory, and a thread cannot outlive its worker, even one
killed with SIGKILL. (The sweep and the balance refresh are threads of their own, ``worker.sweeping`` and
``worker.balance``, not tasks of this cron.)
"""

from __future__ import annotations

import logging
import threading
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.scheduler import RQScheduler

from fluxhook.core.config import Config
from fluxhook.store.queues import QUEUE_NAME

from .retention import purge

log = logging.getLogger("fluxhook.worker")

# How often the cron thread looks for retries whose wait is over (RQ's scheduler's own interval): a retry goes back to
# its queue within this long of its time.
STEP_INTERVAL = 1.0
RETENTION_INTERVAL = 3600
# How often a scheduler that holds no lock on a queue tries for one (its holder may have died;
# a lock outlives its holder by 61 s), and how often one that holds locks renews them.
LOCK_RETRY_INTERVAL = 15
# How often the cron tells RQ's registry of cron schedulers it is alive: RQ counts one silent for 120 s as gone.
CRON_HEARTBEAT_INTERVAL = 30
# How long to wait before trying Redis again after it failed to answer.
REDIS_RETRY_INTERVAL = 1.0


class CronThread(threading.Thread):
    """RQ's cron and RQ's scheduler of delayed jobs, stepped in one thread until ``stop()``."""

    def __init__(self, config: Config, connection: Redis, queue_names: list[str]):
        super().__init__(name="fluxhook-cron", daemon=True)
        self.config = config
        self.connection = connection
        self.queue_names = queue_names
        self._stop_event = threading.Event()
        self.cron: CronScheduler | None = None
        self.scheduler: RQScheduler | None = None

    def request_stop(self) -> None:
        """Stop stepping after the step under way; ``stop`` then waits for it."""
        self._stop_event.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop stepping, leave RQ's registries and release the scheduler's locks."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        next_lock_try = next_cron_beat = next_scheduler_beat = 0.0
        wait = 0.0
        while not self._stop_event.wait(wait):
            try:
                if self.cron is None or self.scheduler is None:
                    self.cron, self.scheduler = self._start()
                if self.cron.enqueue_jobs():
                    self.cron.save()  # when each job ran last, for RQ's view of the cron
                # RQ's own loops beat every step; their records live 120 s (the cron's) and 61 s (the scheduler's
                # and its locks), so a beat every LOCK_RETRY_INTERVAL or CRON_HEARTBEAT_INTERVAL keeps them as alive.
                if time.monotonic() >= next_cron_beat:
                    self.cron.heartbeat()
                    next_cron_beat = time.monotonic() + CRON_HEARTBEAT_INTERVAL
                if self.scheduler.acquired_locks != set(self.queue_names) and time.monotonic() >= next_lock_try:
                    self.scheduler.acquire_locks()
                    next_lock_try = time.monotonic() + LOCK_RETRY_INTERVAL
                if self.scheduler.acquired_locks:
                    if time.monotonic() >= next_scheduler_beat:
                        self.scheduler.heartbeat()
                        next_scheduler_beat = time.monotonic() + LOCK_RETRY_INTERVAL
                    self.scheduler.enqueue_scheduled_jobs()
                wait = min(self.cron.calculate_sleep_interval(), STEP_INTERVAL)
            except RedisError as exc:
                # Outlives a Redis outage: the next step tries again.
                log.warning("worker cron lost Redis; trying again", extra={"error": type(exc).__name__})
                wait = REDIS_RETRY_INTERVAL
        self._finish()

    def _start(self) -> tuple[CronScheduler, RQScheduler]:
        cron = CronScheduler(connection=self.connection, logging_level=self.config.log_level)
        cron.register(purge, QUEUE_NAME, interval=RETENTION_INTERVAL, ttl=RETENTION_INTERVAL,
                      job_timeout=1800, result_ttl=86400, failure_ttl=7 * 86400)
        cron.register_birth()
        scheduler = RQScheduler(self.queue_names, connection=self.connection, logging_level=self.config.log_level)
        scheduler.register_birth()
        return cron, scheduler

    def _finish(self) -> None:
        try:
            if self.scheduler is not None:
                self.scheduler.stop()  # releases its locks, so another worker's cron thread takes them at once
            if self.cron is not None:
                self.cron.register_death()
        except RedisError:
            pass  # the registries expire the entries by themselves


def start(config: Config, connection: Redis, queue_names: list[str]) -> CronThread:
    """Start the worker's cron thread."""
    thread = CronThread(config, connection, queue_names)
    thread.start()
    log.info("worker cron started")
    return thread
