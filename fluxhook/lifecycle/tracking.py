"""Tracking a task submitted elsewhere: fluxhook follows it as a job of its own, from its callbacks on
``/webhooks/bfl`` (or by polling, as a fallback), to the stored file."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from fluxhook.core import job as st
from fluxhook.core import tracing
from fluxhook.core.catalog import first_poll_at
from fluxhook.core.errors import TaskNotTrackable
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import key_limits, recorded
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.steps.kept_callbacks import apply_kept_callback
from fluxhook.services import Services

log = logging.getLogger("fluxhook.jobs")

# The same words whoever sent the task: they name no key, job or owner.
REFUSED_TRACK = ("fluxhook sent this task to BFL for a job that is not this caller's, and only that job follows it; "
                 "track only tasks your app sent to BFL itself")


@dataclass(frozen=True)
class TrackRequest:
    """A task BFL accepted from someone else: its id, and where to poll it (BFL's ``polling_url``) if known."""

    bfl_id: str
    polling_url: str | None = None
    model: str | None = None
    metadata: dict = field(default_factory=dict)
    notify_url: str | None = None
    # The BFL account the task was sent through (None: the first the caller's key may use).
    account: str | None = None


def track_task(svc: Services, caller: Caller, request: TrackRequest) -> tuple[Job, bool]:
    """The caller's job that follows the task, and whether this call created it. Tracking is per owner (an app key,
    or the admin tokens together): each owner tracking a task gets a job of its own, and asked again its job as it
    is; a task the caller's own key had fluxhook submit answers that job. No owner learns whether another tracks
    the task, and no track changes another owner's job. A report of the task that came to the static URL before the
    track makes the new job ask BFL at once.

    ``TaskNotTrackable`` (409) for an app key's track of a task fluxhook submitted for another owner: its words name
    nothing of that owner or its job. An admin's track of it is a job of the admin's own, as for any task: an admin
    sees every job, so that one tells it nothing new.

    ``RateLimited`` past the key's ``requests_per_minute``, which a track counts against like a submission (each costs
    a BFL poll or more; a refused one counts nothing); ``QueueFull`` while the key's queue is full.
    """
    now = time.time()
    account = key_limits.tracking_account(svc, caller, request.account)
    key_limits.check_queue_room(svc, caller)
    taken = key_limits.take_request(svc, caller, now)
    try:
        submitted = svc.jobs.get_by_bfl_id(request.bfl_id)
        if submitted is not None and submitted.key_id == caller.key_id:
            return submitted, False
        if submitted is not None and not caller.admin:
            # A task fluxhook sent is known to be another owner's: tracked, it would store that owner's image for
            # the caller. A task sent elsewhere is tracked per owner, as fluxhook cannot tell whose it is.
            raise TaskNotTrackable(REFUSED_TRACK)
        # A task of a model that takes no webhook will never call back: it is polled at once.
        due = first_poll_at(svc.config.catalog.get(request.model), now, svc.config.callback_grace_seconds)
        job, created = svc.jobs.create(Job(
            id=new_job_id(now), status=st.SUBMITTED, bfl_id=request.bfl_id, model=request.model,
            polling_url=request.polling_url, metadata=request.metadata, created_at=now, updated_at=now,
            submitted_at=now, notify_url=request.notify_url, key_id=caller.key_id, account=account,
            traceparent=tracing.current_traceparent(),
        ), due=due)
    except BaseException:
        key_limits.give_back_request(svc, taken)
        raise
    if created:
        log.info("job tracked", extra={"job_id": job.id, "bfl_id": request.bfl_id})
        outcome = apply_kept_callback(svc, job)
        if outcome is not None:
            log.info("early callback applied", extra={"job_id": job.id, "bfl_id": request.bfl_id, "outcome": outcome})
    return recorded.current(svc, job.id), created
