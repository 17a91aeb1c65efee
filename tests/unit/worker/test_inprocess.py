"""A lane's RQ worker (worker/inprocess.py): after its lane lost Redis, the tasks Redis still records as
running in it are given back to RQ at once, not once their heartbeat lapses; another worker's are left. Idle, it
cleans a queue's registries once per maintenance interval among all lanes, beats every worker_ttl - 15 s, and
looks for `rq suspend` without a heartbeat. A job's task that succeeded leaves nothing in Redis as it ends."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from rq import Queue, Retry
from rq.job import JobStatus
from rq.results import Result
from rq.suspension import resume, suspend
from rq.utils import now
from rq.worker import WorkerStatus

from devtools.processes import wait_until
from fluxhook.core.holds import CLEANING_LOCK_TTL
from fluxhook.lifecycle.steps import enqueueing
from helpers import commands_during
from worker.inprocess import _FULL_CLEANING_DUE, SUSPENSION, InProcessWorker

# Never run: the tests only start tasks, as a worker does before it runs one.
TASK = "worker.retention.purge"


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


def test_a_queues_registries_are_cleaned_once_per_maintenance_interval_whichever_lane_comes_first(make_services):
    """RQ's claim to clean a queue's registries (where a killed worker's task is found abandoned) lasts 15 minutes
    when its holder dies before freeing it, and each lane cleaned in turn; a lane's claim is kept until the next
    maintenance is due, never longer than CLEANING_LOCK_TTL."""
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane, other = (InProcessWorker([queue], connection=svc.redis, maintenance_interval=15) for _ in range(2))
    commands = commands_during(svc.redis, 6, lane.clean_registries)
    claims = [c["command"] for c in commands if c["command"].startswith(f"SET {queue.registry_cleaning_key}")]
    assert claims == [f"SET {queue.registry_cleaning_key} 1 NX EX 14"]
    assert 0 < svc.redis.ttl(queue.registry_cleaning_key) <= 14  # kept: the next lane's maintenance finds it

    cleaned = commands_during(svc.redis, 6, other.clean_registries)
    assert [c for c in cleaned if c["command"].startswith("ZREMRANGEBYSCORE")] == []  # left to the next interval

    rq_default = InProcessWorker([queue], connection=svc.redis)  # RQ's 10 minutes: the claim's life stays short
    svc.redis.delete(queue.registry_cleaning_key)
    _FULL_CLEANING_DUE.clear()
    rq_default.clean_registries()
    assert 0 < svc.redis.ttl(queue.registry_cleaning_key) <= CLEANING_LOCK_TTL <= 60


def test_at_rest_a_maintenance_looks_for_an_abandoned_task_in_two_commands_and_cleans_when_it_finds_one(make_services):
    """docs/scaling.md: a queue's registries are cleaned in full once per FULL_CLEANING_EVERY; between, a maintenance only
    looks whether a killed worker left a task (its heartbeat lapsed, RQ's own rule), and cleans at once if so."""
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane = InProcessWorker([queue], connection=svc.redis, maintenance_interval=15)
    lane.clean_registries()  # the first: in full
    svc.redis.delete(queue.registry_cleaning_key)

    looks = commands_during(svc.redis, 6, lane.clean_registries)
    assert [c["command"].split(" ")[0] for c in looks if not c["command"].startswith("SELECT")] == ["ZRANGEBYSCORE", "LRANGE"]

    _, task = _started(svc.redis, queue)  # a task whose worker died: its heartbeat lapsed a minute ago
    registry = queue.started_job_registry.key
    svc.redis.zadd(registry, {entry: time.time() - 60 for entry in svc.redis.zrange(registry, 0, -1)})
    lane.clean_registries()
    assert task.get_status(refresh=True) in (JobStatus.FAILED, JobStatus.SCHEDULED, JobStatus.QUEUED)


def test_an_idle_lane_beats_every_worker_ttl_less_15_s_and_its_record_never_lapses(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane = InProcessWorker([queue], connection=svc.redis, worker_ttl=45)
    lane.register_birth()
    lane.heartbeat()  # its first beat goes: nothing says until when the record lives

    def beats() -> list[str]:
        sent = commands_during(svc.redis, 6, lane.heartbeat)
        return [c["command"].split(" ")[0] for c in sent if lane.key in c["command"]]

    assert beats() == []  # RQ's dequeue loop beats three times a second and more: the record lives 105 s
    lane.last_heartbeat = now() - timedelta(seconds=30)
    assert beats() == ["HSET", "EXPIRE", "EXPIRE"]  # worker_ttl - 15 s after the last: /readyz wants one in 60 s
    assert 100 <= svc.redis.ttl(lane.key) <= 105

    with svc.redis.pipeline() as pipe:  # a task's beat gives the record only the task's heartbeat TTL
        lane.heartbeat(30, pipeline=pipe)
        pipe.execute()
    assert beats() == ["HSET", "EXPIRE", "EXPIRE"]  # so the beat after the task goes at once
    assert 100 <= svc.redis.ttl(lane.key) <= 105


def test_a_tasks_end_carries_the_lanes_beat_so_the_wait_for_the_next_sends_none(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane, task = _started(svc.redis, queue)
    lane.worker_ttl = 45
    with svc.redis.pipeline() as pipe:  # the task's beat: its record lives the task's heartbeat TTL
        lane.heartbeat(30, pipeline=pipe)
        pipe.execute()
    execution = lane.get_current_executions(refresh=True)[0]
    with svc.redis.pipeline() as pipe:  # the task's end, as RQ writes it
        pipe.multi()
        lane.cleanup_execution(task, pipe, execution)
        pipe.execute()
    assert 100 <= svc.redis.ttl(lane.key) <= 105 and lane.get_state() == WorkerStatus.IDLE
    sent = commands_during(svc.redis, 6, lane.heartbeat)
    assert [c for c in sent if lane.key in c["command"]] == []  # the dequeue loop's beat has nothing to add


def test_a_lane_looks_for_rq_suspend_without_a_heartbeat_and_waits_while_suspended(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    lane, other = (InProcessWorker([queue], connection=svc.redis, worker_ttl=45) for _ in range(2))
    lane.register_birth()
    def look(worker) -> list[str]:
        sent = commands_during(svc.redis, 6, lambda: worker.check_for_suspension(False))
        return [c["command"] for c in sent if not c["command"].startswith("SELECT")]  # the test's own connection

    assert look(lane) == ["EXISTS rq:suspended"]  # one command: no heartbeat with it, no MULTI around it
    assert look(lane) == [] and look(other) == []  # once in a while only, for every lane of the process

    suspend(svc.redis)
    SUSPENSION.due = 0.0
    waiting = threading.Thread(target=lane.check_for_suspension, args=(False,), daemon=True)
    waiting.start()
    wait_until(lambda: lane.get_state() == WorkerStatus.SUSPENDED, timeout=5, message="the lane to see rq suspend")
    assert waiting.is_alive()
    resume(svc.redis)
    waiting.join(5)
    assert not waiting.is_alive()


def test_a_jobs_task_that_succeeded_leaves_nothing_in_redis_as_its_one_multi_ends_it(make_services):
    """RQ deletes a task kept 0 s by reading its executions back (six round trips); a task kept one second ends in
    one MULTI, which deletes its record and its execution, with no round trip before it for the dependents RQ's own
    end watches and reads (no task of fluxhook's has any), and no result written to be deleted."""
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    options = enqueueing._download_options()
    task = queue.enqueue("builtins.len", "abc", job_id="download-job_x", result_ttl=options["result_ttl"],
                         failure_ttl=options["failure_ttl"])
    lane = InProcessWorker([queue], connection=svc.redis, name="lane-kept-nothing")
    commands = commands_during(svc.redis, 6, lambda: lane.work(burst=True))

    sent = [c["command"] for c in commands]
    names = [c.split(" ", 1)[0] for c in sent]
    reads = [c for c in sent if c.split(" ")[0] in ("ZRANGE", "ZREMRANGEBYSCORE") and "executions" in c]
    assert reads == []
    assert not svc.redis.exists(task.key, Result.get_key(task.id), *svc.redis.keys("rq:execution*"))
    assert not [c for c in sent if c.startswith(("WATCH", "XADD")) or task.dependents_key in c]
    assert not svc.redis.zcard("rq:finished:lanes-test")
    dropped = [i for i, c in enumerate(sent) if c == f"DEL {task.key}"]
    assert len(dropped) == 1
    opened = max(i for i in range(dropped[0]) if names[i] == "MULTI")  # in the end's own MULTI
    assert "EXEC" not in names[opened:dropped[0]] and "EXEC" in names[dropped[0]:]
    assert any(c.startswith("HINCRBY") and "successful_job_count" in c for c in sent[opened:dropped[0]])
    assert not [c for c in sent if "total_working_time" in c]  # a figure nothing shows


def test_a_success_kept_on_purpose_and_a_failure_stay(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    kept = queue.enqueue("time.time", result_ttl=600)  # a cron task's success is kept, to look at
    failed = queue.enqueue("math.sqrt", -1, result_ttl=enqueueing.KEEPS_NOTHING, failure_ttl=600)
    retried = queue.enqueue("math.sqrt", -2, result_ttl=enqueueing.KEEPS_NOTHING, failure_ttl=600,
                            retry=Retry(max=1, interval=600))
    worker = InProcessWorker([queue], connection=svc.redis)
    worker.work(burst=True)

    assert kept.get_status(refresh=True) == JobStatus.FINISHED and kept.latest_result() is not None
    assert failed.get_status(refresh=True) == JobStatus.FAILED
    assert 500 < svc.redis.ttl(failed.key)  # a failed run is kept to look at
    assert retried.get_status(refresh=True) == JobStatus.SCHEDULED  # its retry waits, its record whole
    worker.teardown()


def test_a_tasks_start_lifts_only_a_ttl_it_has(make_services):
    svc = make_services(6)
    queue = Queue("lanes-test", connection=svc.redis)
    plain = queue.enqueue("builtins.len", "abc", result_ttl=enqueueing.KEEPS_NOTHING)
    lapsing = queue.enqueue("builtins.len", "abcd", result_ttl=enqueueing.KEEPS_NOTHING, ttl=600)
    lane = InProcessWorker([queue], connection=svc.redis, name="lane-one-hset")
    sent = [c["command"] for c in commands_during(svc.redis, 6, lambda: lane.work(burst=True))]

    assert [c for c in sent if c.startswith("PERSIST")] == [f"PERSIST {lapsing.key}"]  # its TTL would end it mid-run
    assert lane.get_state() == WorkerStatus.IDLE
    assert not svc.redis.exists(plain.key, lapsing.key)
