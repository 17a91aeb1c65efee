"""fluxhook's RQ queues in Redis, by name: what every worker listens to, in the order it takes them; and the wake-up
of the cron thread that moves their retries back once their time comes."""

from __future__ import annotations

from typing import Sequence

from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from fluxhook.store.keys import KEYS
from fluxhook.store.wakes import Watched, push

QUEUE_NAME = "fluxhook"
# Its list in Redis, as RQ names it: a work line's script looks whether it has room (store/work_lines.py).
QUEUE_KEY = Queue.redis_queue_namespace_prefix + QUEUE_NAME


def task_queue(connection: Redis) -> Queue:
    """fluxhook's RQ queue for downloads and confirmations on ``connection``."""
    return Queue(QUEUE_NAME, connection=connection)


def retry_scheduled(target) -> None:
    """On ``target`` (a connection or a pipeline): an RQ task's retry was scheduled for later; wake a cron thread."""
    push(target, KEYS.retry_added)


def retries_watched(connection: Redis, queue_names: Sequence[str], due: float | None) -> Watched:
    """What a cron thread at rest watches: RQ's scheduled registries of ``queue_names``, knowing of no retry (``due``
    None) or of the earliest at ``due``."""
    keys = tuple(ScheduledJobRegistry(name, connection=connection).key for name in queue_names)
    return Watched(present=keys) if due is None else Watched(earlier=tuple((key, due) for key in keys))


def earliest_retry(connection: Redis, queue_names: Sequence[str]) -> float | None:
    """When the earliest retry RQ holds for later in any of ``queue_names`` is due (a Unix time), None if none is:
    one command a queue (RQ's scheduled registry is a sorted set scored by that time)."""
    pipe = connection.pipeline(transaction=False)
    for name in queue_names:
        pipe.zrange(ScheduledJobRegistry(name, connection=connection).key, 0, 0, withscores=True)
    firsts = [float(entries[0][1]) for entries in pipe.execute() if entries]
    return min(firsts, default=None)
