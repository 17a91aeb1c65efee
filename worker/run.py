"""One worker process's life: fluxhook's services, its cron thread, its sweep, its balance reader, its download lanes
(RQ's tasks) and its dispatcher, which takes each kind of fluxhook's own work (worker/kinds.py: sends, checks,
notifications, feeds into RQ) with a capacity of its own (docs/operating.md, bulkheads), until a stop signal."""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time

from redis import Redis
from redis.exceptions import RedisError

from fluxhook.core import tracing
from fluxhook.core.config import Config
from fluxhook.core.holds import IMMINENT_SHUTDOWN_DELAY
from fluxhook.lifecycle import readiness, sweep
from fluxhook.services import Services, build_services, connect_redis
from fluxhook.store import migrations
from fluxhook.store.wakes import LONGEST_WAIT, Wakes

from . import balance, cron, dispatcher, feeding, guarding, inprocess, kinds, lanes, sweeping
from .loops import ACTIVITY

# How often the main thread looks whether a stop was asked for (a signal also ends its wait).
STOP_CHECK_INTERVAL = 0.5
# The threads of a process that wait on wake-up lists (store.wakes): the dispatcher, the cron and the sweeper.
WAITERS = 3
# How much longer than its longest wait the socket of a wait's connection waits for Redis's answer.
WAIT_MARGIN = 10.0

log = logging.getLogger("fluxhook.worker")


def run(config: Config, stop_signals: tuple[int, ...]) -> int:
    """Take work until one of ``stop_signals``; the process's exit code."""
    svc = build_services(config)
    tracing.setup("fluxhook-worker")
    inprocess.init(svc)
    stop = _StopSignals(stop_signals)
    if not _migrated(svc, stop):
        return 0
    readiness.log_clock(svc)
    sweep.wake_held_at_start(svc)
    # Its metrics and hourly counts are written every few seconds, not with each task (and once more at the end).
    svc.store.tallies.start()
    wakes = wakes_for(config)
    # RQ's retries are of downloads alone: submissions, checks and notifications are not RQ's.
    cron_thread = cron.start(config, svc.redis, [svc.queue.name], wakes)
    sweeper = sweeping.Sweeper(svc, wakes).started()
    balance_reader = balance.BalanceReader(svc).started()
    # The lanes' own client: a watcher's wait for a task lasts lanes.WAIT_FOR_TASK.
    lane_redis = waiting_connection(config, lanes.WAIT_FOR_TASK)
    lanes_ = lanes.start(lane_redis, [svc.queue], config.log_level, lambda: download_taken(svc),
                         config.worker_download_concurrency)
    dispatcher_ = dispatcher.Dispatcher(wakes, kinds.kinds(svc), config.wake_guard_seconds).started()
    # Work taken after a stop signal that the stop may cut off (sends, checks): the first stops its takes.
    stop.on_first = lambda: dispatcher_.stop_taking(only_cut=True)
    guard = guarding.Guard(wakes, config.wake_guard_seconds).started()
    log.info("worker started", extra={"downloads": config.worker_download_concurrency, **{
        kind.name: kind.part_size * len(kind.parts) for kind in dispatcher_.kinds.values() if kind.hands}})
    try:
        dead = _until_stopped(stop, (cron_thread, sweeper, balance_reader, dispatcher_, guard))
        stopped_at = time.monotonic()
        log.info("worker stopping: the tasks in hand finish or go back to the queue",
                 extra={"hand_back_after_s": IMMINENT_SHUTDOWN_DELAY})
        # Every part told at once, so their waits end side by side: those on wake-up lists by the stop's pushes.
        for part in (dispatcher_, cron_thread, sweeper, balance_reader, guard):
            part.request_stop()
        try:
            wakes.stop(WAITERS)
        except RedisError as exc:
            # Redis is away: the waits end with their connections as the process ends.
            log.warning("worker could not end its waits at once", extra={"error": type(exc).__name__})
        lanes.stop(lanes_, IMMINENT_SHUTDOWN_DELAY, cold=lambda: stop.count > 1)
        # The sends, checks and attempts under way went on meanwhile: each kind's wait is counted from the stop
        # (SEND_STOP_TIMEOUT, IMMINENT_SHUTDOWN_DELAY, NOTIFY_STOP_TIMEOUT), so the whole stop fits the supervisor's
        # (holds.STOP_TIMEOUT), which is derived from them.
        dispatcher_.stop(since=stopped_at)
    finally:
        for part in (sweeper, guard, balance_reader, cron_thread):
            part.stop()
        svc.store.tallies.stop()
    return 1 if dead else 0


def waiting_connection(config: Config, longest: float) -> Redis:
    """A Redis client of its own for waits of up to ``longest`` seconds: its socket waits that long for an answer and
    ``WAIT_MARGIN`` more (the services' client gives up on a read after 10 s)."""
    connection = connect_redis(config)
    # Before its first connection: every connection of its pool is made with it.
    connection.connection_pool.connection_kwargs["socket_timeout"] = longest + WAIT_MARGIN
    return connection


def wakes_for(config: Config) -> Wakes:
    """The process's waits on wake-up lists (``store.wakes``), on a client of their own."""
    return Wakes(waiting_connection(config, LONGEST_WAIT))


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


def download_taken(svc: Services) -> None:
    """What a lane does as it takes a task: notes a job's download under way (its balance reader follows its end up),
    and, while the process's last feed found work in a line (``feeding.WORK_MAY_WAIT``), feeds RQ from the lines into
    the room the take made in its queue; with every line empty a feed would find nothing, at every take."""
    ACTIVITY.noted()
    if feeding.WORK_MAY_WAIT.is_set():
        feeding.feed_noted(svc)


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
    """Counts the stop signals this process gets; the first stops sends and checks being taken at once.
    Its handler only sets flags: one that took a lock could deadlock on the one the interrupted thread holds."""

    def __init__(self, stop_signals: tuple[int, ...]):
        self.count = 0
        self.on_first = lambda: None
        for sig in {signal.SIGTERM, signal.SIGINT} - set(stop_signals):
            signal.signal(sig, signal.SIG_IGN)
        for number in stop_signals:
            signal.signal(number, self._handle)

    @property
    def requested(self) -> bool:
        return self.count > 0

    def _handle(self, signum, frame) -> None:
        self.count += 1
        if self.count == 1:
            self.on_first()
