"""The worker process's services, built once when the worker starts; its tasks run in the same process."""

from __future__ import annotations

from redis import Redis
from rq import get_current_job

from fluxhook.core.config import Config
from fluxhook.services import Services, connect_redis
from fluxhook.store.wakes import LONGEST_WAIT, Wakes

# How much longer than its longest wait the socket of a wait's connection waits for Redis's answer.
WAIT_MARGIN = 10.0

_services: Services | None = None


def init(services: Services) -> None:
    """Install the services tasks use in this process."""
    global _services
    _services = services


def services() -> Services:
    """The process's services, as ``init`` installed them."""
    if _services is None:
        raise RuntimeError("worker services are not initialised: start workers with `python -m worker`")
    return _services


def last_attempt() -> bool:
    """Whether the running task has no RQ retries left."""
    job = get_current_job()
    return job is None or not job.retries_left


def waiting_connection(config: Config, longest: float) -> Redis:
    """A Redis client of its own for waits of up to ``longest`` seconds: its socket waits that long for an answer and
    ``WAIT_MARGIN`` more (the services' client gives up on a read after 10 s)."""
    connection = connect_redis(config)
    # Before its first connection: every connection of its pool is made with it.
    connection.connection_pool.connection_kwargs["socket_timeout"] = longest + WAIT_MARGIN
    return connection


def wakes_for(config: Config) -> Wakes:
    """The process's waits on wake-up lists (``store.wakes``), on a client of their own."""
    return Wakes(waiting_connection(config, LONGEST_WAIT))
