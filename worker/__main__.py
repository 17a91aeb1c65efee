"""``python -m worker`` (the Procfile's ``worker:`` line): an RQ worker for fluxhook's queues, with its cron thread
(the sweep, retention, retries); with WORKER_PROCESSES above 1, the supervisor of that many (see processes)."""

from __future__ import annotations

import logging
import signal
import sys

from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError
from fluxhook.core.logs import config_secrets, configure_logging

from . import processes

log = logging.getLogger("fluxhook.worker")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    supervisor = _supervisor_pid(argv)
    if supervisor is None:
        print(f"usage: python -m worker (got {' '.join(argv)!r})", file=sys.stderr)
        return 2
    child = supervisor > 0
    if child:
        # Until this child's worker runs, its supervisor's stop ends it; SIGTERM and SIGINT are for the supervisor.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        processes.become_child(supervisor)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"fluxhook worker: configuration error: {problem}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config_secrets(config))
    if not child:
        for warning in config.warnings():
            log.warning(warning)
        if config.worker_processes > 1:
            # Imports nothing of RQ's: a supervisor that only watches its children stays small.
            return processes.supervise(config.worker_processes)
    from .run import run

    return run(config, (processes.STOP_SIGNAL,) if child else (signal.SIGTERM, signal.SIGINT))


def _supervisor_pid(argv: list[str]) -> int | None:
    """0 for a worker on its own, the supervisor's pid for a child, None for arguments not understood."""
    if not argv:
        return 0
    if len(argv) == 2 and argv[0] == processes.CHILD_FLAG and argv[1].isdigit():
        return int(argv[1])
    return None


if __name__ == "__main__":
    sys.exit(main())
