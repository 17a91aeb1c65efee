"""The balance refresh task (queued by RQ's cron every ``BFL_CREDITS_REFRESH_SECONDS``)."""

from __future__ import annotations

from fluxhook.credits.balance import refresh

from .runtime import services


def refresh_balance() -> str:
    """Ask BFL for the account's credits, unless another worker did within the interval."""
    return refresh(services())
