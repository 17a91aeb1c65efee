"""The kinds of work a worker process's dispatcher (worker/dispatcher.py) takes, each with capacity of its own
(docs/operating.md, bulkheads): sends, checks, notification attempts and feeds into RQ."""

from __future__ import annotations

from fluxhook.services import Services

from .checkers import Checks
from .dispatcher import Kind
from .feeding import Feeds
from .notifying import Notifications
from .sending import Sends


def kinds(svc: Services) -> tuple[Kind, ...]:
    """Every kind, at the capacities the process's config gives."""
    return (Sends(svc, svc.config.worker_send_concurrency), Checks(svc, svc.config.worker_check_concurrency),
            Notifications(svc, svc.config.worker_notify_concurrency), Feeds(svc))

