"""``python -m worker`` (the Procfile's ``worker:`` line): an RQ worker for fluxhook's queues, with its clock
(the sweep, retention, retries); with WORKER_PROCESSES above 1, the supervisor of that many (see pool)."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from redis.exceptions import RedisError
from rq import Queue

from fluxhook.config import Config
from fluxhook.errors import ConfigError
from fluxhook.logs import config_secrets, configure_logging
from fluxhook.queue import thumbnail_queue
from fluxhook.services import Services, build_services, wait_for_redis

from . import cron, pool, runtime
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    supervisor = _supervisor_pid(argv)
    if supervisor is None and argv:
        print(f"usage: python -m worker (got {' '.join(argv)!r})", file=sys.stderr)
        return 2
    member = supervisor > 0
    if member:
        # Until this member's worker runs, its supervisor's stop ends it; SIGTERM and SIGINT are for the supervisor.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        pool.become_member(supervisor)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"fluxhook worker: configuration error: {problem}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config_secrets(config))
    if not member:
        for warning in config.warnings():
            log.warning(warning)
        if config.worker_processes > 1:
            return pool.supervise(config.worker_processes)
    stop_signals = (pool.STOP_SIGNAL,) if member else (signal.SIGTERM, signal.SIGINT)
    svc = build_services(config)
    runtime.init(svc)
    queues = _queues(svc)
    clock = cron.start(config, svc.redis, [q.name for q in queues])
    try:
        while True:
            worker = _worker(svc, queues, stop_signals)
            try:
                # RQ's scheduler runs in the clock thread, not in the child process RQ would fork.
                worker.work(with_scheduler=False, logging_level=config.log_level)
            except RedisError:
                pass  # raised by RQ's own teardown when Redis is gone
            if worker._shutdown_requested_date is not None:  # RQ saw SIGTERM or SIGINT: a requested stop
                return 0
            # RQ quits on a lost Redis connection; a worker must come back by itself when Redis does.
            log.warning("worker lost Redis; starting again once it answers")
            if not wait_for_redis(svc.redis, _stop_on_signal(stop_signals)):
                return 0
    finally:
        clock.stop()


def _supervisor_pid(argv: list[str]) -> int | None:
    """0 for a worker on its own, the supervisor's pid for a pool member, None for arguments not understood."""
    if not argv:
        return 0
    if len(argv) == 2 and argv[0] == pool.MEMBER_FLAG and argv[1].isdigit():
        return int(argv[1])
    return None


def _stop_on_signal(stop_signals):
    """Until the next worker installs RQ's handlers, a stop signal just ends the wait."""
    stop = threading.Event()
    for sig in stop_signals:
        signal.signal(sig, lambda *_: stop.set())
    return stop.is_set


def _queues(svc: Services) -> list[Queue]:
    # In this order: the sweep's work, then downloads, then thumbnails (when downloads leave time).
    return [svc.control_queue, svc.queue, thumbnail_queue(svc.redis)]


def _worker(svc: Services, queues: list[Queue], stop_signals: tuple[int, ...]) -> InProcessWorker:
    # On SIGTERM (every PaaS deploy) the task in hand finishes or, after IMMINENT_SHUTDOWN_DELAY,
    # fails over to RQ's retry instead of being killed with the dyno.
    worker = InProcessWorker(queues, connection=svc.redis, worker_ttl=WORKER_TTL,
                             maintenance_interval=MAINTENANCE_INTERVAL, job_monitoring_interval=JOB_MONITORING_INTERVAL)
    worker.imminent_shutdown_delay = IMMINENT_SHUTDOWN_DELAY
    worker.stop_signals = stop_signals
    return worker


if __name__ == "__main__":
    sys.exit(main())
