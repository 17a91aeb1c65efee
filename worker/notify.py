"""An older release's notify task, still queued in RQ after an upgrade: today's notifiers make every attempt, so it
only makes its message (or its job's end) due for them (``notifications.take_back``)."""

from __future__ import annotations

from fluxhook.lifecycle.notifications import take_back

from .inprocess import services


def notify_job(name: str) -> str:
    """Make the message ``name`` (or, from a still older release, the end of the job ``name``) due for a notifier."""
    return take_back(services(), name)
