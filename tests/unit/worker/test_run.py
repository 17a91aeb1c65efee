"""The worker process's main loop (worker/run.py): a thread of its that dies, which each is built never to do, stops
the process, which exits 1 to be started again, rather than leaving part of its work undone in silence."""

from __future__ import annotations

import signal
import time

from worker import cron, run


class _DeadCron(cron.CronThread):
    def run(self) -> None:
        return  # ends at once, as a thread killed by a bug would


def test_a_worker_thread_that_dies_stops_the_worker_which_exits_1(make_services, monkeypatch, caplog):
    svc = make_services(5)

    def dead_cron(config, connection, queue_names, wakes):
        thread = _DeadCron(config, connection, queue_names, wakes)
        thread.start()
        return thread

    monkeypatch.setattr(cron, "start", dead_cron)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)}
    started = time.monotonic()
    try:
        code = run.run(svc.config, (signal.SIGUSR2,))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert code == 1 and time.monotonic() - started < 30
    assert any(r.getMessage().startswith("worker thread died") and r.threads == ["fluxhook-cron"]
               for r in caplog.records)
