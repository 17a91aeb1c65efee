"""The retention task (run hourly by RQ's cron scheduler)."""

from __future__ import annotations

from fluxhook.lifecycle.retention import purge_expired

from .inprocess import services


def purge() -> int:
    """Remove jobs and images older than ``JOB_RETENTION_DAYS``."""
    return purge_expired(services())
