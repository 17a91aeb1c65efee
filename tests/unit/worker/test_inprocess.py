"""A lane's RQ worker (worker/inprocess.py): after its lane lost Redis, the tasks Redis still records as
running in it are given back to RQ at once, not once their heartbeat lapses; another worker's are left."""

from __future__ import annotations

from rq import Queue, Retry
from rq.job import JobStatus

from helpers import commands_during
from worker.inprocess import CLEANING_CLAIM_TTL, InProcessWorker

# Never run: the tests only start tasks, as a worker does before it runs one.
TASK = "worker.balance.refresh_balance"


def _started(connection, queue: Queue, **options):
    """A task taken and started by a worker of its own, as a lane does just before running it."""
    task = queue.enqueue(TASK, **options)
    worker = InProcessWorker([queue], connection=connection)
    worker.register_birth()
    taken, _ = worker.dequeue_job_and_maintain_ttl(1)
    assert taken.id == task.id
    worker.prepare_execution(taken)
    worker.prepare_job_execution(taken)
    assert task.get_status(refresh=True) == JobStatus.STARTED
    return worker, task


def test_a_lost_workers_running_task_is_retried_at_once_and_another_workers_is_left(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lost, task = _started(svc.redis, queue, retry=Retry(max=2))
    other, running = _started(svc.redis, queue)

    assert lost.give_back_lost_tasks("its worker lost Redis") == 1

    assert task.get_status(refresh=True) == JobStatus.QUEUED
    assert task.id in queue.get_job_ids()
    assert task.id not in queue.started_job_registry.get_job_ids(cleanup=False)
    assert running.get_status(refresh=True) == JobStatus.STARTED
    assert running.id in queue.started_job_registry.get_job_ids(cleanup=False)
    assert lost.give_back_lost_tasks("again") == 0  # nothing is given back twice
    other.teardown()


def test_a_lost_task_without_retries_left_fails_with_the_reason(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lost, task = _started(svc.redis, queue)

    assert lost.give_back_lost_tasks("its worker lost Redis") == 1

    task.refresh()
    assert task.get_status() == JobStatus.FAILED
    assert "its worker lost Redis" in (task.latest_result().exc_string or "")


def test_a_worker_killed_while_cleaning_stops_the_others_cleaning_for_a_minute_at_most(make_services):
    """RQ's claim to clean a queue's registries (where a killed worker's task is found abandoned) lasts 15 minutes
    when its holder dies before freeing it; a lane's lasts CLEANING_CLAIM_TTL."""
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane = InProcessWorker([queue], connection=svc.redis)
    commands = commands_during(svc.redis, 6, lane.clean_registries)
    claims = [c["command"] for c in commands if c["command"].startswith(f"SET {queue.registry_cleaning_key}")]
    assert claims == [f"SET {queue.registry_cleaning_key} 1 NX EX {CLEANING_CLAIM_TTL}"] and CLEANING_CLAIM_TTL <= 60
    assert svc.redis.exists(queue.registry_cleaning_key) == 0  # freed once done

    svc.redis.set(queue.registry_cleaning_key, 1, ex=CLEANING_CLAIM_TTL)  # a lane killed while cleaning
    lane.clean_registries()  # another finds the claim held: it leaves the registries to its holder
    assert svc.redis.exists(queue.registry_cleaning_key) == 1
