"""The RQ worker class of a lane: tasks run in the worker process itself, not in a process forked per task; and
what those tasks use of their process: its services, built once when the worker starts (``init``, ``services``),
and whether the running task has RQ retries left (``last_attempt``).

RQ's default forks a work horse for every task; fluxhook's tasks are short downloads, so that fork would be most of
their cost. What the fork gave is kept: a heartbeat thread (one for the worker's life) keeps RQ's record of the running
task fresh, so a worker killed outright has its task found abandoned (and retried) after RQ's heartbeat lapses. An idle
lane's heartbeat goes out as one pipeline every ``worker_ttl - IDLE_BEAT_MARGIN`` seconds (RQ's own worker beats once per
wait for a task, which lasts that long), not three times a second, and an unchanged state is not written again: round
trips to Redis are the worker's own main cost. A task that keeps nothing of its success (``enqueueing.KEEPS_NOTHING``)
leaves nothing in Redis: its record goes in its end's one MULTI, and no result is written.

A task the stopping worker takes back (one that ended by raising ``stopping.StopRequested``, or one its lane
gives back while stuck in a read) goes back to the front of its queue as it was: not failed, no retry spent.
"""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError
from rq import get_current_job, worker_registration
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.registry import clean_registries
from rq.suspension import WORKERS_SUSPENDED
from rq.timeouts import TimerDeathPenalty
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

from fluxhook.core.holds import (
    CLEANING_LOCK_TTL,
    HEARTBEAT_GRACE,
    IDLE_BEAT_MARGIN,
    QUIET_BEAT_EVERY,
    QUIET_RECORD_TTL,
    RQ_RECORD_MARGIN,
)
from fluxhook.core.stopping import StopRequested
from fluxhook.lifecycle.steps.enqueueing import KEEPS_NOTHING
from fluxhook.services import Services
from fluxhook.store.queues import retry_scheduled

log = logging.getLogger("fluxhook.worker")

# How often the heartbeat thread looks whether the task in hand is due a beat.
BEAT_CHECK_INTERVAL = 1.0
# How often the worker asks whether `rq suspend` was run (RQ: before every task).
SUSPENSION_CHECK_EVERY = 5.0
# How often a maintenance that found nothing abandoned cleans a queue's registries in full anyway (RQ's own interval:
# its finished and failed records' expiry, its worker registry). Between, a maintenance only looks whether a task was
# abandoned (a killed worker's: its heartbeat lapsed, or it never left RQ's intermediate queue): two commands a queue.
FULL_CLEANING_EVERY = 600.0


class SuspensionLook:
    """Whether `rq suspend` was run, as the process last looked: one ``EXISTS`` every SUSPENSION_CHECK_EVERY s
    for all its lanes, not a MULTI of it per lane (an idle process's lanes look all the time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.due = 0.0
        self._suspended = False

    def suspended(self, connection) -> bool:
        with self._lock:  # the lanes wait for the one look in progress rather than send their own
            if time.monotonic() >= self.due:
                self.due = time.monotonic() + SUSPENSION_CHECK_EVERY
                self._suspended = bool(connection.exists(WORKERS_SUSPENDED))
            return self._suspended


SUSPENSION = SuspensionLook()
# When this process's next full cleaning of each queue's registries is due (time.monotonic(), by queue name): one for
# all its lanes.
_FULL_CLEANING_DUE: dict[str, float] = {}


class InProcessWorker(SimpleWorker):
    """An RQ worker that runs each task in-process, in a thread of the worker process (a lane, see
    ``worker.lanes``), with heartbeats; its stop and the hand-back of its task are the lane's."""

    # A task's timeout from a timer thread: SIGALRM, RQ's default, reaches only the main thread.
    death_penalty_class = TimerDeathPenalty
    # The task a stop request ended, between handle_exception and handle_job_failure.
    _stopped_task: str | None
    # The task whose success RQ is recording now (handle_job_success), for cleanup_execution.
    _succeeding: str | None = None
    # A lane /readyz need not see: it beats every QUIET_BEAT_EVERY s while idle, not every worker_ttl - IDLE_BEAT_MARGIN.
    quiet = False

    def prepare_execution(self, job: Job) -> Execution:
        # RQ writes the execution in a MULTI of its own and the task's start (prepare_job_execution) in another just
        # after: both go in the start's, one round trip.
        self._starting = self.connection.pipeline()
        execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=self._starting, worker_name=self.name)
        self.executions[execution.id] = execution
        self.set_state(WorkerStatus.BUSY, pipeline=self._starting)
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        # RQ's, in the MULTI that prepare_execution began; without RQ's own heartbeat of the task, whose one field
        # prepare_for_execution writes in the same HSET as its start; and with the worker's beat only when its record
        # would lapse before the heartbeat thread's first beat of the task (after a task's end it has worker_ttl + 60 s
        # left, which RQ's beat here would cut to the task's heartbeat TTL).
        with self._starting as pipe:
            ttl = self.get_heartbeat_ttl(job)
            if getattr(self, "_record_until", 0.0) - time.monotonic() < ttl:
                self.heartbeat(ttl, pipeline=pipe)
            job.prepare_for_execution(self.name, pipeline=pipe)
            if job.ttl:  # RQ's PERSIST: only a task queued to lapse unless started has a TTL to lift
                pipe.persist(job.key)
            if remove_from_intermediate_queue:
                pipe.lrem(Queue(job.origin, connection=self.connection).intermediate_queue_key, 1, job.id)
            pipe.execute()

    def execute_job(self, job: Job, queue: Queue) -> None:
        execution = self.prepare_execution(job)
        self._hold(job, execution)
        try:
            self.perform_job(job, queue, execution)
        finally:
            self._hold(None, None)
        self.set_state(WorkerStatus.IDLE)

    def _hold(self, job: Job | None, execution) -> None:
        """Tell the heartbeat thread which task is in hand (None: none); started with the first task."""
        if getattr(self, "_beat_lock", None) is None:
            self._beat_lock = threading.Lock()
            self._in_hand: tuple | None = None
            self._beat_stop = threading.Event()
            # One thread for the worker's life, not one per task: starting threads is work a short task need not do.
            threading.Thread(target=self._beat, name="rq-heartbeat", daemon=True).start()
        # Under the lock: a beat in progress finishes before the task is let go, so no beat ever
        # revives the record of a task that has ended.
        with self._beat_lock:
            self._in_hand = (job, execution, time.monotonic()) if job is not None else None

    def give_back_task(self) -> bool:
        """From another thread, the process being about to end: put the task in hand back in its queue (see
        ``_put_back``), for a task stuck where it does not look whether the worker wants it back (a socket read
        that ends only at its timeout). True if there was one."""
        held = self._let_go(None, handing_back=True)
        if held is None:
            return False
        job, execution, _ = held
        self._put_back(job, Queue(job.origin, connection=self.connection), execution, stuck=True)
        return True

    def handle_exception(self, job: Job, *exc_info) -> None:
        # A task that stopped because the worker wants it back did not fail: no error line, no traceback.
        # RQ calls handle_job_failure next, in this thread, which puts it back.
        if isinstance(exc_info[1], StopRequested):
            self._stopped_task = job.id
            return
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry=None, exc_string="",
                           execution=None) -> None:
        stopped = getattr(self, "_stopped_task", None) == job.id
        self._stopped_task = None
        if not self._ending_is_mine(job):
            return
        if stopped:
            self._put_back(job, queue, execution, stuck=False)
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
        if job.get_status(refresh=False) == JobStatus.SCHEDULED:
            # A retry for later: the cron thread waiting for the earliest one may be waiting for a later one.
            retry_scheduled(self.connection)

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry, execution) -> None:
        if not self._ending_is_mine(job):
            return
        self._succeeding = job.id  # read by cleanup_execution, which RQ calls on every path a task ends by
        try:
            if job.result_ttl == KEEPS_NOTHING:
                self._end_keeping_nothing(job, execution)
            else:
                super().handle_job_success(job, queue, started_job_registry, execution)
        finally:
            self._succeeding = None

    def _end_keeping_nothing(self, job: Job, execution) -> None:
        """The success of a task that keeps nothing of it, in one MULTI: the worker's count of successes (``rq info``
        shows it; not its total working time, which nothing shows) and the task's execution gone with its record
        (``cleanup_execution``). RQ's own end watches and reads the task's dependents first (two round trips: fluxhook
        gives no task any) and writes a result, a finished record and their TTLs that the same MULTI deletes."""
        with self.connection.pipeline() as pipe:
            self.increment_successful_job_count(pipeline=pipe)
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            pipe.execute()
        self.log.info("Successfully completed job %s on worker %s", job.id, self.name)

    def _ending_is_mine(self, job: Job) -> bool:
        """Whether to record how ``job`` ended: not if its lane gave it back to the queue while it ran (a read that
        ended after all, the process not gone yet), for it is the queue's again, maybe another worker's."""
        self._let_go(job)
        return job.id not in getattr(self, "_handed_back", ())

    def _let_go(self, job: Job | None, handing_back: bool = False) -> tuple | None:
        """Take the task in hand (``job``, or whichever it is for None) from the heartbeat thread: what was held,
        or None if that task is not in hand (any more). Under the heartbeat's lock, so a task's own end and its
        lane's giving it back never both happen."""
        lock = getattr(self, "_beat_lock", None)
        if lock is None:
            return None
        with lock:
            held = self._in_hand
            if held is None or (job is not None and held[0].id != job.id):
                return None
            self._in_hand = None
            if handing_back:
                self._handed_back = {*getattr(self, "_handed_back", ()), held[0].id}
        return held

    def _put_back(self, job: Job, queue: Queue, execution, *, stuck: bool) -> None:
        """Put a task the stopping worker takes back at the front of its queue, its attempt not counted: RQ's own
        retry would spend one (a Retry's interval late), and fail the task on its last; the stop is no fault of
        the task's. One line says so for each task, and whether it was ``stuck`` (in a read, given back by its
        lane) or stopped by itself."""
        with self.connection.pipeline() as pipe:
            pipe.multi()  # one transaction: RQ's enqueue_job opens it if no command came before, else refuses
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            queue.enqueue_job(job, pipeline=pipe, at_front=True)
            pipe.execute()
        log.warning("task in hand handed back to the queue: the worker is stopping",
                    extra={"task": job.id, "queue": queue.name, "stuck": stuck})

    def give_back_lost_tasks(self, why: str) -> int:
        """Record as failed with ``why`` every task Redis still says this worker is running, so RQ retries each
        now rather than once its heartbeat lapses; how many. Only for a worker that runs nothing (its lane is
        idle, or lost Redis): a primary that failed over may have taken the end of its last task with it."""
        given = 0
        for execution in self.get_current_executions(refresh=True):
            try:
                job = Job.fetch(execution.job_id, connection=self.connection)
            except NoSuchJobError:
                continue
            if job.get_status(refresh=False) != JobStatus.STARTED:
                continue
            self.handle_job_failure(job, Queue(job.origin, connection=self.connection), exc_string=why,
                                    execution=execution)
            given += 1
        return given

    def _beat(self) -> None:
        while not self._beat_stop.wait(BEAT_CHECK_INTERVAL):
            with self._beat_lock:
                if self._in_hand is None:
                    continue
                job, execution, since = self._in_hand
                if time.monotonic() - since < self.job_monitoring_interval:
                    continue
                try:
                    self.maintain_heartbeats(job, execution)
                except RedisError:
                    pass  # Redis is away; the task's own calls will say so
                self._in_hand = (job, execution, time.monotonic())

    def check_for_suspension(self, burst: bool) -> None:
        # RQ asks Redis before every task whether `rq suspend` was run, with a heartbeat in the same MULTI; the
        # process's one look every few seconds (SUSPENSION), without the heartbeat (it keeps its own pace), sees it
        # as well. Suspended, RQ's own loop waits for `rq resume`.
        if SUSPENSION.suspended(self.connection):
            super().check_for_suspension(burst)

    def clean_registries(self) -> None:
        # RQ's own, but for the lock: RQ's lasts 15 minutes and is freed when the cleaning ends, so a worker
        # killed while cleaning (a worker starting cleans first) stopped every worker's cleaning, and with it the
        # retry of the tasks a killed worker abandoned, for 15 minutes; and each of the lanes, which start together,
        # cleaned in turn. Kept until the next maintenance is due, as RQ's own lock on cleaning its group registries
        # is: one cleaning of a queue per interval, by whichever lane of whichever process comes first.
        # And but for its cost at rest: a cleaning is some twenty commands a queue, so one runs in full only when a
        # task was abandoned (RQ's own rule: its heartbeat lapsed) or FULL_CLEANING_EVERY passed.
        held = min(max(int(self.maintenance_interval) - 1, 1), CLEANING_LOCK_TTL)
        for queue in self.queues:
            full = time.monotonic() >= _FULL_CLEANING_DUE.get(queue.name, 0.0)
            if not full and not self._abandoned(queue):
                continue
            if full:  # by this lane, or by the one whose claim is held now
                _FULL_CLEANING_DUE[queue.name] = time.monotonic() + FULL_CLEANING_EVERY
            if self.connection.set(queue.registry_cleaning_key, 1, nx=True, ex=held):
                self.log.info("Worker %s: cleaning registries for queue: %s", self.name, queue.name)
                clean_registries(queue)  # the lanes push no exception handlers
                worker_registration.clean_worker_registry(queue)
                queue.intermediate_queue.cleanup(self, queue)
                retry_scheduled(self.connection)  # an abandoned task's retry may be scheduled for later
        # RQ's BaseWorker sets it None in __init__, which mypy takes for its type; RQ assigns now() itself.
        self.last_cleaned_at = now()  # type: ignore[assignment]

    def _abandoned(self, queue: Queue) -> bool:
        """Whether ``queue`` holds a task a killed worker left: running past its heartbeat's lapse, or taken from the
        queue and never started (RQ's intermediate queue). Two commands."""
        return bool(queue.started_job_registry.get_expired_job_ids() or queue.intermediate_queue.get_job_ids())

    def maintain(self) -> None:
        """What RQ's own loop does between two waits for a task, when its interval is due: clean the registries
        (RQ's abandoned tasks retried). Not RQ's scheduler: the process's cron thread is."""
        if self.should_run_maintenance_tasks:
            self.clean_registries()

    def teardown(self) -> None:
        if getattr(self, "_beat_stop", None) is not None:
            self._beat_stop.set()
        super().teardown()

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        if pipeline is None and timeout is None and not self._beat_due():
            return None
        if pipeline is None and timeout is None and self.quiet:
            timeout = QUIET_RECORD_TTL
        # Until when the worker's record lives: each beat sets its TTL (RQ's own, worker_ttl and its margin, unless
        # told), a task's to that task's heartbeat TTL.
        self._record_until = time.monotonic() + (timeout or self.worker_ttl + RQ_RECORD_MARGIN)
        if pipeline is not None:
            return super().heartbeat(timeout, pipeline)
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(timeout, pipe)
            pipe.execute()
        return None

    def _beat_due(self) -> bool:
        """Whether a beat of RQ's dequeue loop goes out. RQ beats three times between two tasks and once per wait for
        one, each time three commands one by one. One beat once the last is ``idle_beat_every`` s old (by default
        ``worker_ttl - IDLE_BEAT_MARGIN``: /readyz wants one within 60 s), or once the record has less than
        ``worker_ttl`` s to live (after a task, whose beats gave it the task's heartbeat TTL), keeps it as alive."""
        last = self.last_heartbeat
        if last is None:
            return True
        left = getattr(self, "_record_until", 0.0) - time.monotonic()
        return (now() - last).total_seconds() >= self.idle_beat_every or left < self.worker_ttl

    @property
    def idle_beat_every(self) -> float:
        """How often the worker beats while it waits for a task (``quiet``: a lane /readyz need not see)."""
        return QUIET_BEAT_EVERY if self.quiet else self.worker_ttl - IDLE_BEAT_MARGIN

    def set_state(self, state: str, pipeline=None) -> None:
        # RQ marks the worker idle twice between two tasks; the second write tells Redis nothing new.
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        # RQ writes the task's last_heartbeat here in a round trip of its own; its end, a moment later, saves the task
        # with that field anyway, and until then the heartbeat thread keeps the running record fresh.
        job.ended_at = now()
        job.last_heartbeat = job.ended_at

    def cleanup_execution(self, job: Job, pipeline, execution=None) -> None:
        super().cleanup_execution(job, pipeline, execution)
        # Idle from the moment the task's end is written, in the same round trip: RQ writes it
        # in one of its own just after. So is the worker's beat: the task's beats left its record
        # the task's heartbeat TTL, and the dequeue loop would beat at once in a round trip of its own.
        self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
        self.heartbeat(pipeline=pipeline)
        if job.result_ttl == KEEPS_NOTHING and self._succeeding == job.id:
            # Its record goes with it (no result was written: _end_keeping_nothing). Left to expire, it would stay in
            # memory until Redis's expiry came across it: at its pace of a few hundred keys a second, hours among the
            # millions of job keys a retention keeps with a TTL.
            pipeline.delete(job.key)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        # The heartbeat thread beats every job_monitoring_interval, as a forking worker does; not SimpleWorker's "the
        # whole job timeout", which would hide a killed worker for minutes, nor RQ's fixed 60 s of grace after it: a beat
        # comes from a thread of its own; two missed mean the worker is gone, its task to run again while the result's URL lives.
        left = job.timeout - working_time if job.timeout and job.timeout > 0 else self.job_monitoring_interval
        return int(min(left, self.job_monitoring_interval)) + HEARTBEAT_GRACE


_services: Services | None = None


def init(services: Services) -> None:
    global _services
    _services = services


def services() -> Services:
    if _services is None:
        raise RuntimeError("worker services are not initialised: start workers with `python -m worker`")
    return _services


def last_attempt() -> bool:
    """Whether the running task has no RQ retries left."""
    job = get_current_job()
    return job is None or not job.retries_left
