"""The Redis commands RQ's enqueue makes, as recorded for a job's change (``QueueTask.record``).

fluxhook replays them inside its own scripts (lua/effects.lua), so RQ stays the only author of its
task records; an rq release that writes them differently must fail here, loudly, before it ships.
"""

from __future__ import annotations

from fluxhook.lifecycle.enqueueing import download_lock, download_task

DB = 13

# What rq 3.0's enqueue_call writes through a pipeline for one task, field names in order.
RQ_JOB_FIELDS = (
    "created_at", "data", "success_callback_name", "failure_callback_name", "stopped_callback_name", "started_at",
    "ended_at", "last_heartbeat", "worker_name", "group_id", "retries_left", "retry_intervals", "origin",
    "description", "enqueued_at", "timeout", "result_ttl", "failure_ttl", "status",
)


def test_a_queued_download_is_exactly_the_writes_rq_makes(make_services):
    svc = make_services(DB)
    lock = download_lock(svc.store.keys, "job_pinned")
    commands = download_task(svc.queue, "job_pinned", lock).token.commands
    record = f"rq:job:{lock.value}"

    assert [(c[0], c[1]) for c in commands] == [
        ("SADD", "rq:queues"), ("HSET", record), ("HSET", record), ("RPUSH", "rq:queue:fluxhook")]
    assert commands[0][2:] == ("rq:queue:fluxhook",)
    assert commands[1][2:] == ("status", "queued")
    assert commands[2][2::2] == RQ_JOB_FIELDS
    assert commands[3][2:] == (lock.value,)


def test_the_recorded_writes_make_a_task_rq_can_read(make_services):
    svc = make_services(DB)
    lock = download_lock(svc.store.keys, "job_read")
    svc.store.effects.apply([download_task(svc.queue, "job_read", lock)])

    task = svc.queue.fetch_job(lock.value)
    assert (task.func_name, task.args, task.get_status()) == ("worker.download.download_result", ("job_read",), "queued")
    assert svc.queue.job_ids == [lock.value]
