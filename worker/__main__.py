"""Start an RQ worker for fluxhook's queue and the cron scheduler of its sweep: ``python -m worker`` (the Procfile's ``worker:`` line)."""

from __future__ import annotations

import sys

from rq import Worker

from fluxhook.config import Config
from fluxhook.errors import ConfigError
from fluxhook.logs import config_secrets, configure_logging
from fluxhook.services import build_services

from . import cron, runtime

# RQ refreshes the heartbeat once per idle wait (ttl - 15 s): 45 keeps it fresher than /readyz's 60 s.
WORKER_TTL = 45
# How often RQ's maintenance runs (it re-queues work abandoned by a killed worker); RQ's default is 10 min.
MAINTENANCE_INTERVAL = 30


def main() -> int:
    try:
        config = Config.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"fluxhook worker: configuration error: {problem}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config_secrets(config))
    svc = build_services(config)
    runtime.init(svc)
    worker = Worker([svc.queue], connection=svc.redis, worker_ttl=WORKER_TTL,
                    maintenance_interval=MAINTENANCE_INTERVAL)
    scheduler = cron.start(config)
    try:
        worker.work(with_scheduler=True, logging_level=config.log_level)
    finally:
        cron.stop(scheduler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
