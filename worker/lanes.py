"""The worker's lanes: a bounded set of RQ workers, each driven by a thread of the worker process.

A download or a poll spends most of its time waiting on the network, and one task at a time would make each
result wait for every task ahead of it. So a worker process takes several RQ tasks at once, each lane an ordinary RQ
worker (``InProcessWorker``) with its own registration, heartbeats and task records: a task still survives its
worker's death (RQ finds it abandoned and retries it) and is retried as RQ's ``Retry`` says. Downloads are the one kind
of RQ task: ``WORKER_DOWNLOAD_CONCURRENCY`` lanes take them from ``fluxhook``.

At rest the lanes cost Redis next to nothing: one of the idle lanes, the watcher (``Watch``), waits for a task
in RQ's own blocking take on its queue for up to ``WAIT_FOR_TASK`` (a task queued ends that wait at once, whoever queued
it: a callback, a feed, RQ's retry); the others wait their turn in the process. Only the process's first download
lane beats at the pace /readyz reads; the others beat as RQ's own idle worker would (``InProcessWorker.quiet``).

Stopping belongs to the process's main thread, where signals arrive (``stop``): a watcher's wait ends at once
(``CLIENT UNBLOCK``, which ends it as its timeout would: no task taken), each lane finishes its task and takes no
other; once the grace is over the process asks for the tasks back (``fluxhook.core.stopping``), and a download stops
at its next piece, to go back to the front of its queue as it was (``InProcessWorker``). A task still in hand a moment
later is stuck in a read that would end only at its timeout: its lane gives it back to the queue the same way, and the
process ends without waiting for the read.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.job import Job
from rq.worker import WorkerStatus

from fluxhook.core import stopping
from fluxhook.core.holds import HAND_BACK_GRACE, IDLE_BEAT_MARGIN, JOB_MONITORING_INTERVAL, WORKER_TTL

from .inprocess import InProcessWorker
from .loops import RETRY_INTERVAL

log = logging.getLogger("fluxhook.worker")

# How long the lane watching the queue waits for a task in one BLMOVE, RQ's own wait for one: bounded by that lane's
# beat, for RQ's loop beats between two waits. A task queued ends it at once; so does a stop (Watch.unblock).
WAIT_FOR_TASK = WORKER_TTL - IDLE_BEAT_MARGIN
# How often a lane waiting for its turn to watch looks whether it is to stop or beat: in the process, no Redis.
TURN_LOOK = 0.25
# How often RQ's maintenance runs (it re-queues work abandoned by a killed worker); RQ's default is 10 min. At rest a
# maintenance is a look of two commands a queue (InProcessWorker.clean_registries), once per WAIT_FOR_TASK at most.
MAINTENANCE_INTERVAL = 15
# How often an idle lane makes sure Redis records no task as running in its RQ worker, for IDLE_CHECK_FOR after its
# last task ends, from IDLE_CHECK_EVERY after it (one at once would come before a failover could; a lane that takes
# tasks that often checks nothing between them): a primary that failed over may lack the end of the worker's last task
# (replication trails by a moment; RQ retried its own lost connection, so the lane never heard of it), and would hold
# that task as running until its heartbeat lapsed, a minute and more. A lane that ran nothing since has nothing to check.
IDLE_CHECK_EVERY = 5.0
IDLE_CHECK_FOR = 60.0
# How long a stop keeps ending the watching lanes' waits (a CLIENT UNBLOCK sent just before a lane's BLMOVE finds
# nothing to end), and so how long it waits for them.
UNBLOCK_FOR = 1.0


class Watch:
    """The one lane that waits in Redis for a task (its BLMOVE on RQ's queue, see the module's docstring); a task queued
    ends its wait, and the next idle lane watches as soon as it has taken it."""

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self._guard = threading.Lock()
        self._client: int | None = None  # the watcher's connection, while it waits in Redis

    def waiting(self, client: int | None) -> None:
        with self._guard:
            self._client = client

    def unblock(self, connection: Redis) -> bool:
        """End the watcher's wait now, as its timeout would (CLIENT UNBLOCK: it takes no task); whether one waits."""
        with self._guard:
            client = self._client
        if client is None:
            return False
        try:
            connection.client_unblock(client)
        except RedisError:
            pass  # Redis is away: the wait ends with the connection
        return True


class Lane(threading.Thread):
    """One RQ worker on ``queues``, taking and running tasks in this thread until ``stop_taking``."""

    def __init__(self, connection, queues: list[Queue], name: str, log_level: str, after_take: Callable[[], object],
                 watch: Watch, quiet: bool):
        super().__init__(name=name, daemon=True)
        self.connection = connection
        self.after_take = after_take
        self.queues = queues
        self.log_level = log_level
        self.watch = watch
        self.quiet = quiet
        self._stopping = False
        self.busy = False
        self._current: InProcessWorker | None = None
        self._next_idle_check = 0.0
        self._idle_since: float | None = None  # when its last task ended (None: it ran none since its worker started)
        self._client: int | None = None  # its connection's id in Redis (CLIENT ID), asked once per connection

    def stop_taking(self) -> None:
        """Take no other task once the one in hand ends (a flag: safe in a signal handler)."""
        self._stopping = True

    def give_back(self) -> None:
        """The task still in hand is stuck in a read after the grace: put it back in its queue now."""
        worker = self._current
        if not self.busy or worker is None:
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
                time.sleep(RETRY_INTERVAL)
            finally:
                if worker is not None:
                    try:
                        worker.teardown()
                    except RedisError:
                        pass  # the worker's record expires by itself
                    worker.connection.close()  # the lane's own connection, back to its pool

    def _give_back(self, lost: InProcessWorker) -> None:
        given = lost.give_back_lost_tasks("its worker lost Redis while at it")
        if given:
            log.warning("tasks of a worker that lost Redis given back to RQ", extra={"lane": self.name, "tasks": given})

    def _check_idle(self, worker: InProcessWorker) -> None:
        worker.heartbeat()  # when due (InProcessWorker._beat_due): the record of a lane that waits its turn lives
        now = time.monotonic()
        if self._idle_since is not None and now >= self._next_idle_check and now - self._idle_since < IDLE_CHECK_FOR:
            self._next_idle_check = now + IDLE_CHECK_EVERY
            self._give_back(worker)

    def _take_tasks(self, worker: InProcessWorker) -> None:
        self._idle_since = None
        while not self._stopping:
            taken = self._wait_for_task(worker)
            if taken is None:
                if not self._stopping:
                    self._check_idle(worker)
                continue
            try:
                self.after_take()
            except RedisError as exc:
                log.warning("lane could not feed the next task; the sweep will", extra={"error": type(exc).__name__})
            self.busy = True
            try:
                worker.execute_job(*taken)
            finally:
                self.busy = False
                self._idle_since = time.monotonic()
                self._next_idle_check = self._idle_since + IDLE_CHECK_EVERY
            worker.heartbeat()

    def _wait_for_task(self, worker: InProcessWorker) -> tuple[Job, Queue] | None:
        """RQ's loop between two tasks, as RQ's own dequeue runs it (its beat, its maintenance, one wait for a task),
        for the lane whose turn it is to watch; None if no task came (or it is not this lane's turn)."""
        if not self.watch.turn.acquire(timeout=TURN_LOOK):
            return None
        try:
            if self._stopping:
                return None
            worker.check_for_suspension(False)
            worker.set_state(WorkerStatus.IDLE)
            worker.heartbeat()
            worker.maintain()
            if self._client is None:
                self._client = int(worker.connection.client_id())
            self.watch.waiting(self._client)
            try:
                if self._stopping:  # a stop that came before the watch was noted ended no wait
                    return None
                return Queue.dequeue_any(worker.queues, WAIT_FOR_TASK, connection=worker.connection,
                                         job_class=worker.job_class, serializer=worker.serializer,
                                         death_penalty_class=worker.death_penalty_class)
            except DequeueTimeout:
                return None
            finally:
                self.watch.waiting(None)
        finally:
            self.watch.turn.release()

    def _connected(self, connection) -> None:
        # A new connection (redis-py reconnects by itself) is a new client to Redis: its id is asked again.
        self._client = None

    def _worker(self) -> InProcessWorker:
        # A connection of the lane's own for RQ's commands, its wait for a task among them, so a stop can end that wait
        # by the connection's id; its pipelines (the heartbeat thread's) take others from the pool.
        client = Redis(connection_pool=self.connection.connection_pool, single_connection_client=True)
        if client.connection is not None:
            client.connection.register_connect_callback(self._connected)
        self._client = None
        worker = InProcessWorker(self.queues, connection=client, worker_ttl=WORKER_TTL,
                                 maintenance_interval=MAINTENANCE_INTERVAL,
                                 job_monitoring_interval=JOB_MONITORING_INTERVAL)
        worker.quiet = self.quiet
        worker.log.setLevel(self.log_level)
        return worker


def start(connection, queues: list[Queue], log_level: str, after_take: Callable[[], object], count: int) -> list[Lane]:
    """Start ``count`` download lanes on ``queues``; each calls ``after_take`` as it takes a task, before running it
    (to feed RQ the next work in turn: the take made the room in RQ's queue, which a task's end does not). The first
    beats at the pace /readyz reads; the others are quiet. ``connection``'s socket timeout must outlast WAIT_FOR_TASK
    (RQ's worker raises it so for the connections it makes next)."""
    watch = Watch()
    lanes = [Lane(connection, queues, f"fluxhook-download-{number}", log_level, after_take, watch, quiet=number != 1)
             for number in range(1, count + 1)]
    for lane in lanes:
        lane.start()
    return lanes


def stop(lanes: list[Lane], hand_back_after: float, cold: Callable[[], bool]) -> None:
    """Stop ``lanes``: each finishes its task, or has it handed back to its queue after ``hand_back_after`` seconds
    (at once when ``cold()`` turns true: a second stop signal)."""
    for lane in lanes:
        lane.stop_taking()
    _end_waits(lanes)
    _wait_idle(lanes, hand_back_after, cold)
    stopping.REQUESTED.set()
    _wait_idle(lanes, HAND_BACK_GRACE, lambda: False)
    stuck = [lane for lane in lanes if lane.busy]
    for lane in stuck:
        lane.give_back()
    # The others end their wait (a watcher's was ended above, the others' turn look is TURN_LOOK) and sign off, waited
    # for together. Not the stuck ones: they hold nothing now, and would keep the process until their read's timeout
    # (a wait of 2 s for each took a pool's member past its supervisor's STOP_TIMEOUT, to be killed).
    deadline = time.monotonic() + UNBLOCK_FOR + TURN_LOOK
    for lane in lanes:
        if lane not in stuck:
            lane.join(max(0.0, deadline - time.monotonic()))


def _end_waits(lanes: list[Lane]) -> None:
    """End the watching lanes' waits for a task, again while one still waits (for UNBLOCK_FOR at most): a watcher
    that was about to wait when the first CLIENT UNBLOCK went had none to end."""
    watches = {id(lane.watch): (lane.watch, lane.connection) for lane in lanes}
    deadline = time.monotonic() + UNBLOCK_FOR
    while time.monotonic() < deadline:
        if not [watch for watch, connection in watches.values() if watch.unblock(connection)]:
            return
        time.sleep(0.05)  # the watcher's thread ends its wait: nothing to wait on but the clock


def _wait_idle(lanes: list[Lane], seconds: float, cold: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while any(lane.busy for lane in lanes) and time.monotonic() < deadline and not cold():
        time.sleep(0.05)  # the lanes' tasks end in their own threads: nothing to wait on but the clock
