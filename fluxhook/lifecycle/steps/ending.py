"""Ending a job on purpose, by a caller's cancel or its deadline (``core.job`` says in what status).

A job not yet sent ends under its submit lock, the lock its sender holds from its last look at the job through
BFL's answer: so a job is either sent, and ends as one BFL has (its charge kept), or ends unsent, and no sender
sends it after (each checks the job under that lock, ``submission``). Ending one unsent frees its slot or its place
in line and its reservation, and charges nothing; ending one BFL has keeps what BFL charged, and its result is never
downloaded (a later Ready, by callback or poll, finds the job terminal and changes nothing). BFL has no cancel, so
the task of one it has runs on, and counts against the account's slots there: the job keeps its slot until BFL
says the task ended or its hour is over (``running_on``).
"""

from __future__ import annotations

import logging
import secrets
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Callable

from fluxhook.core import job as st
from fluxhook.core.holds import SUBMIT_LEASE
from fluxhook.core.job import BATCH_CANCELED_CODE, Ending, Job
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import task_inputs
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.jobs import Terms

if TYPE_CHECKING:
    from fluxhook.services import Services

log = logging.getLogger("fluxhook.ending")

# Between looks at the submit lock while a sender holds it.
LOOK_GAP = 0.2


class Ended(StrEnum):
    """What an attempt to end a job did."""

    ENDED = "ended"
    # It had ended already (a terminal status): nothing changed.
    ALREADY = "already"
    GONE = "gone"
    # A sender was sending it to BFL all the while: nothing changed yet.
    SENDING = "sending"


def end(svc: Services, job_id: str, rule: Callable[[str], Ending | None], *, wait: float) -> Ended:
    """End the job as ``rule`` says for its status (None: it has ended); while a sender is sending it, wait up to
    ``wait`` seconds for BFL's answer, which decides how it ends (sent, or back in line unsent)."""
    give_up = time.monotonic() + wait
    while True:
        job = svc.jobs.get(job_id)
        if job is None:
            return Ended.GONE
        ending = rule(job.status)
        if ending is None:
            return Ended.ALREADY
        moved = _end_unsent(svc, job, ending) if job.status == st.QUEUED else _end_sent(svc, job, ending)
        if moved is True:
            log.info("job ended on purpose", extra={"job_id": job.id, "status": ending.status, "code": ending.code})
            return Ended.ENDED
        if moved is None:
            if time.monotonic() >= give_up:
                return Ended.SENDING
            time.sleep(LOOK_GAP)
        # Otherwise it moved meanwhile (sent, stored, failed...): looked at again as it is now.


def end_unsent(svc: Services, job: Job, ending: Ending) -> bool:
    """End a ``queued`` job that was never sent (the caller holds its submit lock): its slot or place in line and its
    reservation go, nothing is charged, its input is dropped. Whether it moved."""
    moved = svc.jobs.transition(job.id, ending.status, only_from=(st.QUEUED,), input=None,
                                error={"code": ending.code, "message": ending.message},
                                effects=[ReleaseBudget.of(job),
                                         *accounting.on_end(job, ending.status, time.time())])
    if moved and job.input is None:
        task_inputs.drop(svc, job.id)  # its input waited in storage (one kept in its record went with the move)
    if moved and job.batch_id and ending.status == st.ABORTED:
        # A batch item never sent keeps no record of its own: what a key makes and cancels must not cost Redis
        # a record an item for the retention's days. One whose own notifications were asked for keeps its record
        # for them, unless its batch's cancel ended it (the batch's end tells of every item then).
        svc.store.batches.prune_unsent(job.batch_id, job.model or "", job.key_id, [job.id],
                                       by_cancel=ending.code == BATCH_CANCELED_CODE)
    return bool(moved)


def _end_unsent(svc: Services, job: Job, ending: Ending) -> bool | None:
    """``end_unsent`` under the job's submit lock; None while a sender holds it."""
    lock, token = svc.store.keys.submit_lock(job.id), secrets.token_hex(8)
    if not svc.store.locks.acquire(lock, token, SUBMIT_LEASE):
        return None
    try:
        return end_unsent(svc, job, ending)
    finally:
        svc.store.locks.release(lock, token)


def _end_sent(svc: Services, job: Job, ending: Ending) -> bool:
    """End a job BFL has (``submitted`` or ``ready``): what BFL charged stays counted, and the download, if one is
    queued, finds the job ended and fetches nothing. A submitted one keeps its slot while BFL runs its task on."""
    # One that keeps its slot is due at once: its task is polled on the schedule from there (steps/running_on.py).
    return bool(svc.jobs.transition(job.id, ending.status, only_from=(st.SUBMITTED, st.READY),
                                    terms=Terms(task_runs=True), draft_cache_source=None, due=time.time(),
                                    error={"code": ending.code, "message": ending.message},
                                    effects=accounting.on_end(job, ending.status, time.time())))
