"""One worker process's life: fluxhook's services, its clock, and an RQ worker started again
whenever Redis comes back, until a stop signal."""

from __future__ import annotations

import logging
import signal

from redis.exceptions import RedisError
from rq import Queue

from fluxhook.core.config import Config
from fluxhook.services import Services, build_services, wait_for_redis
from fluxhook.store.queues import thumbnail_queue

from . import cron, runtime, sending
from .inprocess import InProcessWorker

# RQ refreshes the heartbeat once per idle wait (ttl - 15 s): 45 keeps it fresher than /readyz's 60 s.
WORKER_TTL = 45
# How often RQ's maintenance runs (it re-queues work abandoned by a killed worker); RQ's default is 10 min.
MAINTENANCE_INTERVAL = 15
# How often the worker checks on the running task; a killed worker's task counts as abandoned
# this long plus RQ's fixed 60 s after its last check (RQ's default is 30 s).
JOB_MONITORING_INTERVAL = 10
# After SIGTERM, the task in hand gets this long to finish before it is handed back to the queue
# (and retried): well inside the 30 s a PaaS waits before SIGKILL.
IMMINENT_SHUTDOWN_DELAY = 10

log = logging.getLogger("fluxhook.worker")


def run(config: Config, stop_signals: tuple[int, ...]) -> int:
    """Take tasks until one of ``stop_signals``; the process's exit code."""
    svc = build_services(config)
    runtime.init(svc)
    queues = _queues(svc)
    clock = cron.start(config, svc.redis, [q.name for q in queues])
    senders = sending.start(svc)
    try:
        while True:
            worker = _worker(svc, queues, stop_signals)
            worker.on_stop = senders.stop_taking
            try:
                # RQ's scheduler runs in the clock thread, not in the child process RQ would fork.
                worker.work(with_scheduler=False, logging_level=config.log_level)
            except RedisError:
                pass  # raised by RQ's own teardown when Redis is gone
            if worker.stop_requested:
                return 0
            # RQ quits on a lost Redis connection; a worker must come back by itself when Redis does.
            log.warning("worker lost Redis; starting again once it answers")
            if not wait_for_redis(svc.redis, _stop_on_signal(stop_signals)):
                return 0
    finally:
        senders.stop()
        clock.stop()


def _stop_on_signal(stop_signals):
    """Until the next worker installs RQ's handlers, a stop signal just ends the wait."""
    # A flag, not a threading.Event: setting one from a handler could deadlock on its lock.
    stopped: list[int] = []
    for sig in stop_signals:
        signal.signal(sig, lambda signum, frame: stopped.append(signum))
    return lambda: bool(stopped)


def _queues(svc: Services) -> list[Queue]:
    # In this order: the sweep's work (its checks poll tasks whose callbacks are overdue), then downloads, then
    # thumbnails (when downloads leave time). Submissions are not RQ's: the senders send them (see sending).
    return [svc.control_queue, svc.queue, thumbnail_queue(svc.redis)]


def _worker(svc: Services, queues: list[Queue], stop_signals: tuple[int, ...]) -> InProcessWorker:
    # On SIGTERM (every PaaS deploy) the task in hand finishes or, after IMMINENT_SHUTDOWN_DELAY,
    # fails over to RQ's retry instead of being killed with the dyno.
    worker = InProcessWorker(queues, connection=svc.redis, worker_ttl=WORKER_TTL,
                             maintenance_interval=MAINTENANCE_INTERVAL, job_monitoring_interval=JOB_MONITORING_INTERVAL)
    worker.imminent_shutdown_delay = IMMINENT_SHUTDOWN_DELAY
    worker.stop_signals = stop_signals
    return worker
