"""The notify task: one attempt of one notification message (``lifecycle.delivering``)."""

from __future__ import annotations

from fluxhook.lifecycle.delivering import deliver

from .runtime import services


def notify_job(message_id: str) -> str:
    """Make one attempt of the message; a failed one is scheduled again by the message itself, never by raising."""
    return deliver(services(), message_id)
