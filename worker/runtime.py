"""The worker process's services, built once when the worker starts; its tasks run in the same process."""

from __future__ import annotations

from typing import Any

from rq import get_current_job

from fluxhook.lifecycle.work import run_queued_for, run_token
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


def task_id() -> str:
    """The running RQ task's id (a token's own, see ``fluxhook.lifecycle.work``)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("not running as an RQ task")
    return job.id


def run_work(kind: str, job_id: str, token: bool) -> Any:
    """A work-line task of ``kind``: a token (``token``) works on the job whose turn it is among every key's
    (``job_id`` only says which job's arrival queued it); a task queued before tokens works on ``job_id``."""
    if token:
        return run_token(services(), kind, task_id(), last_attempt=last_attempt())
    return run_queued_for(services(), kind, job_id, last_attempt=last_attempt())
