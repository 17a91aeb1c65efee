"""Deadlines (``Cancel-After``): a job not sent by its deadline ends ``aborted`` (never sent, never charged), one
sent but not stored by then ``canceled`` (BFL's charge kept). The sweep acts on the deadlines that have passed, read
from their own index (``Keys.deadlines``), so it costs O(deadlines due), never a scan of the jobs; a sender checks
the deadline again under the job's submit lock just before the send (``steps.submission``)."""

from __future__ import annotations

import logging

from fluxhook.core.holds import CLAIM_LEASE
from fluxhook.core.job import deadline_ending
from fluxhook.lifecycle.steps import ending
from fluxhook.services import Services

log = logging.getLogger("fluxhook.deadlines")

# Most deadlines one sweep acts on; the rest wait for the next sweep, a second later.
DEADLINE_BATCH = 500
# A job being sent when its deadline passed is looked at again this soon: BFL's answer decides how it ends.
SENDING_RECHECK = 1.0


def enforce_deadlines(svc: Services, now: float) -> int:
    """End the jobs whose deadline has passed by ``now``; how many it ended."""
    ended = 0
    for job_id in svc.jobs.claim_deadlines(now, DEADLINE_BATCH, now + CLAIM_LEASE):
        outcome = ending.end(svc, job_id, deadline_ending, wait=0)
        if outcome == ending.Ended.SENDING:
            svc.jobs.deadline_done(job_id, again_at=now + SENDING_RECHECK)
            continue
        svc.jobs.deadline_done(job_id)
        ended += outcome == ending.Ended.ENDED
    if ended:
        log.info("jobs ended at their deadline", extra={"count": ended})
    return ended
