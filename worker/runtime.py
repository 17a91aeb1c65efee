"""The worker process's services, built once when the worker starts; its tasks run in the same process."""

from __future__ import annotations

from rq import get_current_job

from fluxhook.services import Services

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
