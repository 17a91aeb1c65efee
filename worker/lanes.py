"""The worker's lanes: a bounded set of RQ workers, each driven by a thread of the worker process.

A download or a poll spends most of its time waiting on the network, and one task at a time would make each
result wait for every task ahead of it. So a worker process takes several RQ tasks at once, each lane an ordinary RQ
worker (``InProcessWorker``) with its own registration, heartbeats and task records: a task still survives its
worker's death (RQ finds it abandoned and retries it) and is retried as RQ's ``Retry`` says. Each kind has lanes of its
own (``worker.run``, SPEC §7 bulkheads): ``WORKER_DOWNLOAD_CONCURRENCY`` lanes take downloads from ``fluxhook`` and
``WORKER_CHECK_CONCURRENCY`` lanes take the sweep's checks from ``fluxhook-control``, so neither kind waits for the
other's.

Stopping belongs to the process's main thread, where signals arrive (``stop``): each lane finishes its task
and takes no other; once the grace is over the process asks for the tasks back (``fluxhook.core.stopping``), and
a download stops at its next piece, to go back to the front of its queue as it was (``InProcessWorker``). A
task still in hand a moment later is stuck in a read that would end only at its timeout: its lane gives it back
to the queue the same way, and the process ends without waiting for the read.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from redis.exceptions import RedisError
from rq import Queue
from rq.worker import WorkerStatus

from fluxhook.core import stopping

from .inprocess import InProcessWorker

log = logging.getLogger("fluxhook.worker")

# How long one wait for a task lasts before the lane looks whether to stop (RQ's own is worker_ttl - 15 s): a stop
# waits this long for its idle lanes. Each wait is one BLPOP; the heartbeat keeps its own pace (next).
DEQUEUE_TIMEOUT = 1
# An idle lane beats every WORKER_TTL - 15 s (inprocess.IDLE_BEAT_MARGIN), its record living WORKER_TTL + 60 s:
# 45 keeps the latest beat fresher than /readyz's 60 s.
WORKER_TTL = 45
# How often RQ's maintenance runs (it re-queues work abandoned by a killed worker); RQ's default is 10 min.
MAINTENANCE_INTERVAL = 15
# How often the worker beats for the running task; a killed worker's task counts as abandoned this long
# plus inprocess.HEARTBEAT_GRACE after its last beat (RQ's default is 30 s).
JOB_MONITORING_INTERVAL = 10
# How long a task asked back gets to stop by itself (a download stops at its next piece: a second away at the
# slowest rate media.fetch accepts) before its lane gives it back while the task is still in a read.
HAND_BACK_GRACE = 2.0
# How long to wait before trying again after Redis failed to answer.
REDIS_RETRY_INTERVAL = 1.0
# How often an idle lane makes sure Redis records no task as running in its RQ worker: a primary that failed
# over may lack the end of the worker's last task (RQ retried its own lost connection, so the lane never
# heard of it), and would hold that task as running until its heartbeat lapsed.
IDLE_CHECK_EVERY = 5.0


class Lane(threading.Thread):
    """One RQ worker on ``queues``, taking and running tasks in this thread until ``stop_taking``."""

    def __init__(self, connection, queues: list[Queue], name: str, log_level: str, after_task: Callable[[], object]):
        super().__init__(name=name, daemon=True)
        self.connection = connection
        self.after_task = after_task
        self.queues = queues
        self.log_level = log_level
        self._stopping = False
        self._busy = False
        self._current: InProcessWorker | None = None
        self._next_idle_check = 0.0

    def stop_taking(self) -> None:
        """Take no other task once the one in hand ends (a flag: safe in a signal handler)."""
        self._stopping = True

    @property
    def busy(self) -> bool:
        return self._busy

    def give_back(self) -> None:
        """The task still in hand is stuck in a read after the grace: put it back in its queue now."""
        worker = self._current
        if not self._busy or worker is None:
            return
        try:
            worker.give_back_task()
        except RedisError as exc:
            # RQ's maintenance retries it once its heartbeat lapses, as a killed worker's.
            log.warning("task in hand left to RQ: Redis did not answer", extra={"lane": self.name,
                                                                               "error": type(exc).__name__})

    def run(self) -> None:
        lost: InProcessWorker | None = None
        while not self._stopping:
            worker = None
            try:
                worker = self._current = self._worker()  # it names itself to Redis: Redis may be away
                worker.register_birth()
                worker.set_state(WorkerStatus.STARTED)
                if lost is not None:
                    self._give_back(lost)
                    lost = None
                self._take_tasks(worker)
            except RedisError as exc:
                # A new RQ worker once Redis answers again: its record may be gone with the old primary.
                log.warning("lane lost Redis; starting again", extra={"error": type(exc).__name__})
                lost = lost or worker
                time.sleep(REDIS_RETRY_INTERVAL)
            finally:
                try:
                    if worker is not None:
                        worker.teardown()
                except RedisError:
                    pass  # the worker's record expires by itself

    def _give_back(self, lost: InProcessWorker) -> None:
        # The primary that took over may lack the end of the worker's last task (replication trails by a
        # moment), and would hold it as running until its heartbeat lapsed: a minute and more.
        given = lost.give_back_lost_tasks("its worker lost Redis while at it")
        if given:
            log.warning("tasks of a worker that lost Redis given back to RQ", extra={"lane": self.name, "tasks": given})

    def _check_idle(self, worker: InProcessWorker) -> None:
        if time.monotonic() >= self._next_idle_check:
            self._next_idle_check = time.monotonic() + IDLE_CHECK_EVERY
            self._give_back(worker)

    def _take_tasks(self, worker: InProcessWorker) -> None:
        while not self._stopping:
            worker.check_for_suspension(False)
            taken = worker.dequeue_job_and_maintain_ttl(DEQUEUE_TIMEOUT, max_idle_time=DEQUEUE_TIMEOUT)
            if taken is None:
                self._check_idle(worker)
                continue
            self._busy = True
            try:
                worker.execute_job(*taken)
            finally:
                self._busy = False
            worker.heartbeat()
            self._after_task()

    def _after_task(self) -> None:
        try:
            self.after_task()
        except RedisError as exc:
            log.warning("lane could not feed the next task; the sweep will", extra={"error": type(exc).__name__})

    def _worker(self) -> InProcessWorker:
        worker = InProcessWorker(self.queues, connection=self.connection, worker_ttl=WORKER_TTL,
                                 maintenance_interval=MAINTENANCE_INTERVAL,
                                 job_monitoring_interval=JOB_MONITORING_INTERVAL)
        worker.log.setLevel(self.log_level)
        return worker


def start(connection, queues: list[Queue], log_level: str, after_task: Callable[[], object], count: int,
          kind: str) -> list[Lane]:
    """Start ``count`` lanes of ``kind`` on ``queues``; each calls ``after_task`` when a task of its ends (to feed
    RQ the next work in turn)."""
    lanes = [Lane(connection, queues, f"fluxhook-{kind}-{number}", log_level, after_task)
             for number in range(1, count + 1)]
    for lane in lanes:
        lane.start()
    return lanes


def stop(lanes: list[Lane], hand_back_after: float, cold: Callable[[], bool]) -> None:
    """Stop ``lanes``: each finishes its task, or has it handed back to its queue after ``hand_back_after`` seconds
    (at once when ``cold()`` turns true: a second stop signal)."""
    for lane in lanes:
        lane.stop_taking()
    _wait_idle(lanes, hand_back_after, cold)
    stopping.request()
    _wait_idle(lanes, HAND_BACK_GRACE, lambda: False)
    stuck = [lane for lane in lanes if lane.busy]
    for lane in stuck:
        lane.give_back()
    # The others end their wait for a task (DEQUEUE_TIMEOUT) and sign off, waited for together. Not the stuck
    # ones: they hold nothing now, and would keep the process until their read's timeout (a wait of 2 s for
    # each took a pool's member past its supervisor's STOP_TIMEOUT, to be killed).
    deadline = time.monotonic() + DEQUEUE_TIMEOUT + 1.0
    for lane in lanes:
        if lane not in stuck:
            lane.join(max(0.0, deadline - time.monotonic()))


def _wait_idle(lanes: list[Lane], seconds: float, cold: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while any(lane.busy for lane in lanes) and time.monotonic() < deadline and not cold():
        time.sleep(0.05)  # the lanes' tasks end in their own threads: nothing to wait on but the clock
