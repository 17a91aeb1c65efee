"""One worker process's life: fluxhook's services, its cron thread, its sweep, its balance reader, and a capacity of its
own for each kind of work (docs/operating.md, bulkheads): its senders (submissions), its checkers (the sweep's checks), its
download lanes (RQ's tasks, with the feeder that moves downloads into RQ) and its notifier, until a stop signal."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from typing import Callable

from redis.exceptions import RedisError
from rq import Queue

from fluxhook.core import tracing
from fluxhook.core.config import Config
from fluxhook.core.holds import IMMINENT_SHUTDOWN_DELAY, NOTIFY_STOP_TIMEOUT, SEND_STOP_TIMEOUT
from fluxhook.lifecycle import readiness
from fluxhook.services import Services, build_services
from fluxhook.store import migrations
from fluxhook.store.wakes import Wakes

from . import balance, checkers, cron, feeding, guarding, lanes, notifying, runtime, sending, sweeping
from .activity import ACTIVITY
from .pool import Pool

# How often the main thread looks whether a stop was asked for (a signal also ends its wait).
STOP_CHECK_INTERVAL = 0.5
# The threads of a process that wait on wake-up lists (store.wakes): the feeder, the dispatcher, the check dispatcher,
# the notifier, the cron and the sweeper.
WAITERS = 6

log = logging.getLogger("fluxhook.worker")


def run(config: Config, stop_signals: tuple[int, ...]) -> int:
    """Take work until one of ``stop_signals``; the process's exit code."""
    svc = build_services(config)
    tracing.setup("fluxhook-worker")
    runtime.init(svc)
    queues = _queues(svc)
    stop = _StopSignals(stop_signals)
    if not _migrated(svc, stop):
        return 0
    readiness.log_clock(svc)
    # Its metrics and hourly counts are written every few seconds, not with each task (and once more at the end).
    svc.store.tallies.start()
    # The threads that wait on wake-up lists at rest, and the stop that ends their waits: see store.wakes.
    wakes = runtime.wakes_for(config)
    cron_thread = cron.start(config, svc.redis, [q.name for q in queues], wakes)
    sweeper = sweeping.start(svc, wakes)
    balance_reader = balance.start(svc)
    senders = sending.start(svc, wakes, config.worker_send_concurrency)
    # The lanes' own client: a watcher's wait for a task lasts lanes.WAIT_FOR_TASK.
    lane_redis = runtime.waiting_connection(config, lanes.WAIT_FOR_TASK)
    lanes_ = lanes.start(lane_redis, [svc.queue], config.log_level, lambda: _download_taken(svc),
                         config.worker_download_concurrency, "download")
    checkers_ = checkers.start(svc, wakes, config.worker_check_concurrency)
    stop.on_first = _taking_stopped(senders, checkers_)
    feeder = feeding.start(svc, wakes)
    notifier = notifying.start(svc, wakes)
    guard = guarding.start(wakes, config.wake_guard_seconds)
    log.info("worker started", extra={"senders": senders.size, "downloads": config.worker_download_concurrency,
                                      "checks": checkers_.size, "notifications": notifier.size})
    dead: list[str] = []
    try:
        dead = _until_stopped(stop, (cron_thread, sweeper, balance_reader, senders, checkers_, feeder, notifier, guard))
        stopped_at = time.monotonic()
        log.info("worker stopping: the tasks in hand finish or go back to the queue",
                 extra={"hand_back_after_s": IMMINENT_SHUTDOWN_DELAY})
        # Every part told at once, so their waits end side by side: those on wake-up lists by the stop's pushes.
        for part in (feeder, senders, checkers_, notifier, cron_thread, sweeper, balance_reader, guard):
            part.request_stop()
        _end_waits(wakes)
        lanes.stop(lanes_, IMMINENT_SHUTDOWN_DELAY, cold=lambda: stop.count > 1)
        feeder.stop()
        # The sends and attempts under way went on meanwhile: each wait is counted from the stop, so the whole stop
        # fits the supervisor's (holds.STOP_TIMEOUT), which is derived from them.
        senders.stop(_left(stopped_at, SEND_STOP_TIMEOUT))
        # A check cut off is due again once its claim lapses.
        checkers_.stop(_left(stopped_at, IMMINENT_SHUTDOWN_DELAY))
        notifier.stop(_left(stopped_at, NOTIFY_STOP_TIMEOUT))
    finally:
        for part in (sweeper, guard, balance_reader, cron_thread):
            part.stop()
        svc.store.tallies.stop()
    return 1 if dead else 0


def _until_stopped(stop: "_StopSignals", watched: tuple[threading.Thread, ...]) -> list[str]:
    """Wait for a stop signal, or for one of ``watched`` to die; the names of those dead (none: a stop signal).

    Each of them outlives Redis's failures and its own; one that died anyway (a bug) would leave part of the work undone
    in silence (a dead cron moves no retry again), so the process stops and exits 1, to be started again by the
    supervisor (WORKER_PROCESSES) or the platform."""
    while not stop.requested:
        time.sleep(STOP_CHECK_INTERVAL)
        dead = [part.name for part in watched if not part.is_alive()]
        if dead:
            log.error("worker thread died: the worker stops, and exits 1 to be started again", extra={"threads": dead})
            return dead
    return []


def _taking_stopped(*pools: Pool) -> Callable[[], None]:
    """What a first stop signal does: the pools take no more work (a flag each, safe in a signal handler)."""
    def stop_taking() -> None:
        for pool in pools:
            pool.stop_taking()
    return stop_taking


def _left(since: float, wait: float) -> float:
    """What is left of ``wait`` seconds counted from ``since`` (time.monotonic())."""
    return max(0.0, since + wait - time.monotonic())


def _download_taken(svc: Services) -> None:
    ACTIVITY.noted()  # a job's download under way: its balance reader follows its end up
    feeding.after_take(svc)


def _end_waits(wakes: Wakes) -> None:
    try:
        wakes.stop(WAITERS)
    except RedisError as exc:
        # Redis is away: the waits end with their connections as the process ends.
        log.warning("worker could not end its waits at once", extra={"error": type(exc).__name__})


def _migrated(svc: Services, stop: _StopSignals) -> bool:
    """Bring what an older release kept into today's shape before any work is taken (docs/operating.md, Upgrading),
    waiting out a Redis that does not answer yet; False if a stop came first."""
    while not stop.requested:
        try:
            done = migrations.migrate(svc.redis, svc.config)
        except RedisError as exc:
            log.warning("worker cannot migrate yet: Redis did not answer", extra={"error": type(exc).__name__})
            time.sleep(1.0)  # Redis is down: nothing to wait on but the clock
            continue
        if done.ran:
            log.info("migrated what older releases kept", extra=dataclasses.asdict(done))
        return True
    return False


class _StopSignals:
    """Counts the stop signals this process gets; the first stops the senders taking turns at once.
    Its handler only sets flags: one that took a lock could deadlock on the one the interrupted thread holds."""

    def __init__(self, stop_signals: tuple[int, ...]):
        self.count = 0
        self.on_first = lambda: None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN if sig not in stop_signals else self._handle)
        for number in stop_signals:
            signal.signal(number, self._handle)

    @property
    def requested(self) -> bool:
        return self.count > 0

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1:
            self.on_first()


def _queues(svc: Services) -> list[Queue]:
    # The queues this process's RQ workers take from, for its cron's scheduler of RQ's retries: downloads (each making
    # its thumbnail once its job is stored). Submissions, checks and notifications are not RQ's.
    return [svc.queue]
