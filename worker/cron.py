"""RQ's cron scheduler, run beside the worker: it queues the fallback sweep every second and retention hourly.

Each worker process starts one (so the sweep keeps running however workers are scaled);
duplicate sweeps are harmless because claiming due jobs is atomic.
"""

from __future__ import annotations

import logging
import multiprocessing
import os

from redis.exceptions import RedisError
from rq.cron import CronScheduler
from rq.exceptions import StopRequested

from fluxhook.config import Config
from fluxhook.queue import CONTROL_QUEUE_NAME, QUEUE_NAME
from fluxhook.services import connect_redis, wait_for_redis

from .retention import purge
from .sweep import sweep

SWEEP_INTERVAL = 1
# A sweep not started within this long is dropped: the next one does the same work.
SWEEP_TTL = 10
RETENTION_INTERVAL = 3600


class _ChildScheduler(CronScheduler):
    """A cron scheduler that stops when the worker that started it is gone (even after SIGKILL)."""

    def __init__(self, *args, parent_pid: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.parent_pid = parent_pid

    def heartbeat(self) -> None:
        if os.getppid() != self.parent_pid:
            raise StopRequested()
        super().heartbeat()


def run(config: Config, parent_pid: int) -> None:
    """Queue a sweep every ``SWEEP_INTERVAL`` seconds and retention hourly, until stopped.

    Outlives a Redis outage: it waits for Redis to answer again rather than exiting.
    """
    connection = connect_redis(config)
    try:
        _schedule(config, connection, parent_pid)
    except StopRequested:
        pass  # SIGTERM while waiting for Redis


def _schedule(config: Config, connection, parent_pid: int) -> None:
    while True:
        scheduler = _ChildScheduler(connection=connection, logging_level=config.log_level, parent_pid=parent_pid)
        scheduler.register(sweep, CONTROL_QUEUE_NAME, interval=SWEEP_INTERVAL, ttl=SWEEP_TTL, job_timeout=60,
                           result_ttl=0, failure_ttl=86400)
        scheduler.register(purge, QUEUE_NAME, interval=RETENTION_INTERVAL, ttl=RETENTION_INTERVAL,
                           job_timeout=1800, result_ttl=86400, failure_ttl=7 * 86400)
        try:
            scheduler.start()
            return  # stopped on request, or its worker is gone
        except RedisError:
            logging.getLogger("fluxhook.worker").warning("cron scheduler lost Redis; waiting for it")
        if not wait_for_redis(connection, lambda: os.getppid() != parent_pid):
            return


def start(config: Config) -> multiprocessing.Process:
    """Start the scheduler in a child process of this worker."""
    process = multiprocessing.get_context("fork").Process(
        target=run, args=(config, os.getpid()), name="fluxhook-cron", daemon=False)
    process.start()
    logging.getLogger("fluxhook.worker").info("cron scheduler started", extra={"pid": process.pid})
    return process


def stop(process: multiprocessing.Process, timeout: float = 5.0) -> None:
    """Stop the scheduler child and wait for it."""
    if process.is_alive():
        process.terminate()
        process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
