"""The kinds of work a worker process's dispatcher (worker/dispatcher.py) takes, each with capacity of its own
(docs/operating.md, bulkheads): sends (its senders), checks (its checkers), notification attempts (its attempt
threads) and feeds into RQ (done in the take: RQ's lanes run the tasks fed, worker/lanes.py)."""

from __future__ import annotations

from fluxhook.services import Services

from .checkers import Checks
from .dispatcher import Kind
from .feeding import Feeds
from .notifying import Notifications
from .sending import Sends


def kinds(svc: Services) -> tuple[Kind, ...]:
    """Every kind, at the capacities the process's config gives."""
    config = svc.config
    return (Sends(svc, config.worker_send_concurrency), Checks(svc, config.worker_check_concurrency),
            Notifications(svc, config.worker_notify_concurrency), Feeds(svc))


# The kinds a first stop signal stops taking at once: a send or a check taken after it may be cut off.
TAKEN_UNTIL_SIGNAL = ("send", "check")
