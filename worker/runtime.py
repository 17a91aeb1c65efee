"""The worker process's services, built once before RQ forks work horses (which inherit them)."""

from __future__ import annotations

from rq import get_current_job

from fluxhook.config import Config
from fluxhook.services import Services, build_services

_services: Services | None = None


def init(services: Services) -> None:
    """Install the services tasks use in this process."""
    global _services
    _services = services


def services() -> Services:
    """The process's services, built from the environment on first use if ``init`` was not called."""
    global _services
    if _services is None:
        _services = build_services(Config.from_env())
    return _services


def last_attempt() -> bool:
    """Whether the running task has no RQ retries left."""
    job = get_current_job()
    return job is None or not job.retries_left
