"""What worker/inprocess.py, worker/lanes.py and worker/cron.py rely on in RQ, held so that an RQ upgrade that changes
it fails here, by name, rather than in a lane at run time: the methods it overrides keep their parameters, the
attributes and methods it reads or calls exist, RQ's blocking take ends at CLIENT UNBLOCK as at its timeout, and RQ's
worker still calls the hooks in the order and thread the subclass expects."""

from __future__ import annotations

import inspect
import threading
from datetime import datetime, timedelta, timezone

import pytest
from redis import Redis
from rq import Queue
from rq.exceptions import DequeueTimeout
from rq.executions import Execution
from rq.job import JobStatus
from rq.registry import ScheduledJobRegistry
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

from devtools.processes import wait_until
from fluxhook.store.queues import earliest_retry
from worker.inprocess import InProcessWorker

# RQ's own (non-underscore) names the subclass calls or reads, beside the methods it overrides.
USED_FROM_RQ = ("prepare_execution", "perform_job", "maintain_heartbeats", "get_current_executions",
                "job_monitoring_interval", "last_heartbeat", "get_state", "register_birth",
                "dequeue_job_and_maintain_ttl", "queues", "connection", "log", "name",
                "worker_ttl", "maintenance_interval", "last_cleaned_at",
                # The lane's own loop between two tasks (worker.lanes.Lane._wait_for_task), RQ's dequeue's as it is.
                "should_run_maintenance_tasks", "job_class", "serializer", "death_penalty_class",
                # A task's start in one MULTI, and the end of one that keeps nothing (worker.inprocess).
                "executions", "increment_successful_job_count")
USED_FROM_QUEUE = ("registry_cleaning_key", "intermediate_queue", "enqueue_job", "started_job_registry",
                   "dequeue_any", "intermediate_queue_key")
# The cron thread moves RQ's retries as RQ's scheduler does, under its locks, only when one is due (worker.cron).
USED_FROM_SCHEDULER = ("acquire_locks", "enqueue_scheduled_jobs", "release_locks")
# A task's end deletes the record of a task that keeps nothing of its success (cleanup_execution).
USED_FROM_JOB = ("key", "result_ttl", "get_status", "prepare_for_execution")
OVERRIDDEN = sorted(name for name, value in vars(InProcessWorker).items()
                    if inspect.isfunction(value) and not name.startswith("_") and hasattr(SimpleWorker, name))


def test_every_override_has_a_method_of_rq_to_override():
    # Those the subclass overrides today: a name dropped here means a hook RQ no longer has.
    assert set(OVERRIDDEN) >= {"execute_job", "handle_exception", "handle_job_failure", "handle_job_success",
                               "heartbeat", "set_state", "handle_execution_ended", "cleanup_execution",
                               "get_heartbeat_ttl", "check_for_suspension", "clean_registries", "teardown"}


@pytest.mark.parametrize("name", OVERRIDDEN)
def test_an_override_takes_the_parameters_rq_passes(name):
    ours = inspect.signature(getattr(InProcessWorker, name))
    theirs = inspect.signature(getattr(SimpleWorker, name))
    shape = [(p.name, p.kind, p.default) for p in theirs.parameters.values()]
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == shape, (
        f"RQ's {name}{theirs} changed: worker/inprocess.py overrides it as {name}{ours}")


def test_the_names_the_subclass_reads_exist(connection):
    worker = InProcessWorker([Queue("contract", connection=connection)], connection=connection)
    missing = [name for name in USED_FROM_RQ if not hasattr(worker, name)]
    queue = worker.queues[0]
    missing += [f"Queue.{name}" for name in USED_FROM_QUEUE if not hasattr(queue, name)]
    task = queue.enqueue("time.time")
    missing += [f"Job.{name}" for name in USED_FROM_JOB if not hasattr(task, name)]
    scheduler = RQScheduler([queue.name], connection=connection)
    missing += [f"RQScheduler.{name}" for name in USED_FROM_SCHEDULER if not hasattr(scheduler, name)]
    missing += [f"StartedJobRegistry.{name}" for name in ("get_expired_job_ids",)
                if not hasattr(queue.started_job_registry, name)]
    missing += [] if hasattr(Execution, "create") else ["Execution.create"]
    missing += [f"IntermediateQueue.{name}" for name in ("get_job_ids",) if not hasattr(queue.intermediate_queue, name)]
    assert not missing, f"RQ no longer has what worker/inprocess.py uses: {missing}"


def test_rq_s_blocking_take_ends_at_client_unblock_as_at_its_timeout_taking_nothing(connection):
    """A stop ends the watching lane's wait (worker.lanes.Watch.unblock): RQ must take it for a timeout, not a task."""
    queue = Queue("contract-unblock", connection=connection)
    waiter = Redis(connection_pool=connection.connection_pool, single_connection_client=True)
    client = int(waiter.client_id())
    ended: list[object] = []

    def wait() -> None:
        try:
            ended.append(Queue.dequeue_any([queue], 30, connection=waiter))
        except DequeueTimeout as exc:
            ended.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    wait_until(lambda: connection.client_unblock(client), timeout=5, message="RQ's BLMOVE to block")
    thread.join(2)
    assert not thread.is_alive() and isinstance(ended[0], DequeueTimeout)
    queue.enqueue("time.time")
    assert len(queue.get_job_ids()) == 1  # taken by nobody


def test_rq_s_scheduled_registry_is_a_sorted_set_scored_by_the_retry_s_time(connection):
    """The cron thread waits until the earliest retry (store.queues.earliest_retry): the registry's scores."""
    queue = Queue("contract-retry", connection=connection)
    at = datetime.now(timezone.utc) + timedelta(seconds=90)
    task = queue.enqueue_at(at, "time.time")
    assert earliest_retry(connection, [queue.name]) == pytest.approx(at.timestamp(), abs=1)
    assert ScheduledJobRegistry(queue.name, connection=connection).get_job_ids() == [task.id]


class Recording(InProcessWorker):
    """The subclass with each hook noting that RQ called it, and from which thread."""

    calls: list[tuple[str, str]]

    def _note(self, name: str) -> None:
        self.calls.append((name, threading.current_thread().name))

    def execute_job(self, job, queue):
        self._note("execute_job")
        super().execute_job(job, queue)

    def handle_exception(self, job, *exc_info):
        self._note("handle_exception")
        super().handle_exception(job, *exc_info)

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string="", execution=None):
        self._note("handle_job_failure")
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def handle_job_success(self, job, queue, started_job_registry, execution):
        self._note("handle_job_success")
        super().handle_job_success(job, queue, started_job_registry, execution)

    def handle_execution_ended(self, job, queue, heartbeat_ttl):
        self._note("handle_execution_ended")
        super().handle_execution_ended(job, queue, heartbeat_ttl)

    def cleanup_execution(self, job, pipeline, execution=None):
        self._note("cleanup_execution")
        super().cleanup_execution(job, pipeline, execution)


def _worked(connection, task: str) -> tuple[Recording, object]:
    queue = Queue("contract", connection=connection)
    job = queue.enqueue(task)
    worker = Recording([queue], connection=connection)
    worker.calls = []
    worker.work(burst=True)
    return worker, job


def _names(worker: Recording) -> list[str]:
    return [name for name, _ in worker.calls]


def test_rq_runs_a_task_through_the_hooks_in_order(connection):
    worker, job = _worked(connection, "time.time")

    assert job.get_status(refresh=True) == JobStatus.FINISHED
    names = _names(worker)
    assert names[0] == "execute_job"
    assert names.index("handle_execution_ended") < names.index("handle_job_success")
    assert "cleanup_execution" in names and "handle_exception" not in names
    # One thread: the heartbeat's lock and the hand-back rely on the task's end being in the thread that ran it.
    assert len({thread for _, thread in worker.calls}) == 1


def test_rq_reports_a_failing_task_to_handle_exception_then_handle_job_failure_in_one_thread(connection):
    worker, job = _worked(connection, "builtins.len")  # len() with no argument raises TypeError

    assert job.get_status(refresh=True) == JobStatus.FAILED
    names = _names(worker)
    assert names.index("handle_exception") < names.index("handle_job_failure")
    assert "handle_job_success" not in names
    threads = {thread for name, thread in worker.calls if name in ("handle_exception", "handle_job_failure")}
    assert len(threads) == 1, "StopRequested's hand-back needs both calls in the thread that ran the task"

