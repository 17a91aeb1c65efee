"""Confirming a failure report: a failure BFL reported by callback (or a report that proves nothing of its task) is
believed only once BFL's answer to a poll agrees, since a forged or stale failure must not end a job BFL still runs.

The poll is the job's own check, put in the check line now rather than at its next poll (docs/architecture.md: polls and checks
are fluxhook's own work, held by the sweep's lease): the job is claimed as the sweep claims it, so a process that dies
before the check leaves it due again when the claim lapses, and a job reported twice while it waits is in line once.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fluxhook.core import job as st
from fluxhook.core.holds import CLAIM_LEASE

if TYPE_CHECKING:
    from fluxhook.services import Services


def check_now(svc: "Services", job_id: str) -> bool:
    """Put the submitted job's check in the check line now, ahead of its schedule; False if it is not submitted."""
    claim = round(time.time() + CLAIM_LEASE, 3)  # as the due index keeps it (milliseconds): the same claim read back
    if not svc.jobs.update(job_id, only_in=(st.SUBMITTED,), due=claim):
        return False
    svc.store.checks.add([job_id], claim)
    return True
