"""A queued job of a revoked app key: it ends ``failed`` / ``key_revoked``, unpaid (its reservation goes back),
whether its key's revocation found it in line or its submission did."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import task_inputs, timeline
from fluxhook.store.effects import ReleaseBudget

if TYPE_CHECKING:
    from fluxhook.services import Services

KEY_REVOKED = "key_revoked"


def fail(svc: Services, job: Job) -> bool:
    """Move a queued job of a revoked key to ``failed`` / ``key_revoked`` (the caller holds its submit lock)."""
    moved = svc.jobs.transition(
        job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
        error={"code": KEY_REVOKED, "message": "the app key that created this job was revoked before it was sent "
                                               "to BFL; nothing was charged"},
        effects=[ReleaseBudget.of(job), *accounting.on_end(job, st.FAILED, time.time())])
    if moved:
        timeline.record(svc, job.id, "submission", outcome=KEY_REVOKED)
        task_inputs.drop(svc, job.id)
    return bool(moved)
