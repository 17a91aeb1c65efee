"""Removing a job and everything kept for it (``DELETE /v1/jobs/{id}``, the dashboard's Delete, retention): the
record, its image or video, their thumbnail, poster and draft cache, its timeline, its notifications.

Deleting frees nothing BFL still uses: a job that holds a BFL slot for a task BFL runs (or is being sent)
ends first as a cancel ends it, keeping its slot, and goes once BFL says its task ended or its hour is over
(``steps/erasing.py``, as ``steps/running_on.py`` gives the slot back). Else it goes at once."""

from __future__ import annotations

import time

from fluxhook.core.errors import SendUnderWay
from fluxhook.core.job import cancel_ending
from fluxhook.lifecycle.steps import ending, erasing, running_on
from fluxhook.services import Services

# How long a delete waits for BFL's answer to a send of the job under way at that very moment, as a cancel does.
SEND_WAIT = 15.0


def waits_for_bfl(holds_slot: bool, sent_at: float, now: float) -> bool:
    """Whether a deleted job may go only once BFL ends its task: it holds a BFL slot (``submitted``, canceled while
    BFL runs its task on, or being sent), and that task's hour (from ``sent_at``, its submission or else its creation)
    is not over (``running_on.hold_over``). Erased now, it would give back a slot BFL still counts, and its key could
    run more tasks at BFL than its ``max_active`` by submitting and deleting."""
    return holds_slot and not running_on.hold_over(None, sent_at, now)


def remove_job(svc: Services, job_id: str, *, wait: float = SEND_WAIT) -> bool:
    """Remove the job and all that belongs to it, now or, if BFL still runs its task (``waits_for_bfl``), once BFL
    ends it: the job ends ``canceled`` now as a cancel ends it, keeps its slot, and is erased as it gives it back.
    False if there was no record (its leftovers go anyway). ``SendUnderWay`` (503) when BFL's answer to its send did
    not come within ``wait`` seconds (nothing changed: the delete may be sent again)."""
    job = svc.jobs.get(job_id)
    if job is not None and waits_for_bfl(svc.slots.account_of(job.id) is not None,
                                         job.submitted_at or job.created_at, time.time()):
        if ending.end(svc, job.id, cancel_ending, wait=wait) == ending.Ended.SENDING:
            raise SendUnderWay("the job is being sent to BFL at this moment; send the delete again in a few seconds",
                               retry_after=5)
        if erasing.asked(svc, job.id):
            return True  # erased once BFL ends its task
    return erasing.erase(svc, job_id)
