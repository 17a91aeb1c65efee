"""fluxhook's RQ queues in Redis, by name: what every worker listens to, in the order it takes them."""

from __future__ import annotations

from redis import Redis
from rq import Queue

QUEUE_NAME = "fluxhook"
# Its list in Redis, as RQ names it: a work line's script looks whether it has room (store/work_lines.py).
QUEUE_KEY = Queue.redis_queue_namespace_prefix + QUEUE_NAME
# The sweep, its checks and queued submissions: listed first by every worker, so a backlog of
# downloads never holds back the polls of lost callbacks or the dispatch of free BFL slots.
CONTROL_QUEUE_NAME = "fluxhook-control"


def task_queue(connection: Redis) -> Queue:
    """fluxhook's RQ queue for downloads and confirmations on ``connection``."""
    return Queue(QUEUE_NAME, connection=connection)


def control_queue(connection: Redis) -> Queue:
    """fluxhook's RQ queue for the sweep's work, which workers take first."""
    return Queue(CONTROL_QUEUE_NAME, connection=connection)
