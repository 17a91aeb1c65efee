"""Several worker processes under one ``python -m worker`` (``WORKER_PROCESSES``): for a dyno or container whose cores a
single one-task-at-a-time worker would leave idle while it waits on the network and the disk.

The supervisor only starts, stops and restarts its children; each child is a whole worker (its own cron thread, RQ worker
and heartbeats), as if started on its own. Stopping has one signal:
- SIGTERM or SIGINT to the supervisor sends each child ``STOP_SIGNAL`` once, and the child stops as a lone worker does on
  SIGTERM (its task gets ``IMMINENT_SHUTDOWN_DELAY``, then goes back to the queue). Children ignore SIGTERM and SIGINT
  themselves: a PaaS that signals the whole process group would otherwise hand each a second signal, a cold stop.
- on Linux, a child also gets ``STOP_SIGNAL`` when the supervisor dies, even of SIGKILL, so no child outlives it.
A child that exits unasked is started again, after a pause that grows while it keeps failing.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

from fluxhook.core.holds import STOP_TIMEOUT

log = logging.getLogger("fluxhook.worker")

CHILD_FLAG = "--child-of"
STOP_SIGNAL = signal.SIGUSR1
# Pauses before starting again a child that exited unasked, growing while children keep failing.
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
# A child that ran this long counts as healthy: the next failure starts the pauses over.
HEALTHY_AFTER = 60.0
# How often the supervisor looks at its children.
CHECK_INTERVAL = 0.5

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def supervise(size: int) -> int:
    """Run ``size`` child workers until SIGTERM or SIGINT; the exit code of ``python -m worker``."""
    return _Supervisor(size).run()


def restart_delay(failures: int) -> float:
    """The pause before starting a child again after ``failures`` failures in a row (1 or more)."""
    return RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]


def become_child(supervisor_pid: int) -> None:
    """In a child: be sent ``STOP_SIGNAL`` when the supervisor dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(STOP_SIGNAL), 0, 0, 0)
    except (OSError, AttributeError):
        return  # no prctl: a child then outlives a supervisor killed outright
    if os.getppid() != supervisor_pid:  # it died before prctl took effect
        os.kill(os.getpid(), STOP_SIGNAL)


class _Child:
    def __init__(self, number: int):
        self.number = number
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.failures = 0
        self.start_at = 0.0  # when to start it (again)


class _Supervisor:
    def __init__(self, size: int):
        self.children = [_Child(n) for n in range(1, size + 1)]
        self.stopping = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        log.info("worker processes starting", extra={"processes": len(self.children)})
        while not self.stopping:
            for child in self.children:
                self._look_after(child)
            time.sleep(CHECK_INTERVAL)
        self._stop_all()
        return 0

    def _stop(self, signum, frame) -> None:
        # Only a flag: a handler that took a lock (threading.Event.set) could deadlock on the one
        # the interrupted main thread holds.
        self.stopping = True

    def _look_after(self, child: _Child) -> None:
        if child.process is not None:
            code = child.process.poll()
            if code is None:
                return
            ran = time.monotonic() - child.started
            child.failures = 1 if ran >= HEALTHY_AFTER else child.failures + 1
            child.start_at = time.monotonic() + restart_delay(child.failures)
            child.process = None
            log.warning("worker process exited; starting another", extra={
                "child": child.number, "exit_code": code, "ran_s": round(ran, 1),
                "restart_in_s": restart_delay(child.failures)})
            return
        if time.monotonic() >= child.start_at:
            child.process = subprocess.Popen([sys.executable, "-m", "worker", CHILD_FLAG, str(os.getpid())])
            child.started = time.monotonic()

    def _stop_all(self) -> None:
        running = [m.process for m in self.children if m.process is not None]
        log.info("worker processes stopping", extra={"processes": len(running)})
        for process in running:
            try:
                process.send_signal(STOP_SIGNAL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process did not stop in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()
