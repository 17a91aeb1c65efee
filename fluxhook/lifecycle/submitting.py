"""A queued job's submission by a worker's sender: the jobs whose turn it is take the free BFL slots
(``take_turns``), and each is sent at once (``submit_queued``, by ``steps.submission``); an error that will pass
puts the job back in line, and any other fails it."""

from __future__ import annotations

import time
from typing import Mapping

from redis.exceptions import RedisError

from fluxhook.core import job as st
from fluxhook.core.errors import BFLError, FluxhookError, NotReplicated, RetryableError
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import durable, schedule, submission, task_inputs
from fluxhook.services import Services
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.slots import Dispatched


def take_turns(svc: Services, limit: int, *, free_lapsed: bool = True,
               senders: Mapping[str, int] | None = None) -> Dispatched:
    """Give up to ``limit`` free BFL slots to the jobs whose turn it is (fair share, docs/fair-share.md): each to be sent at
    once with ``submit_queued``, by the account whose slot it took. The caller asks for no more than it can send
    now, so a slot is held only by a task being sent or run at BFL: ``senders``, when given, how many of each BFL
    account's jobs it can send now. ``free_lapsed``: free the slots held past their lease first (a caller that
    dispatches often does so once in a while)."""
    return svc.slots.dispatch(limit, free_lapsed=free_lapsed, senders=senders)


def submit_queued(svc: Services, job_id: str, account: str | None = None) -> str:
    """Submit a queued job that was handed a slot (of ``account``, when the caller knows it); an error that will
    pass puts it back in line (and propagates, for RQ to record); any other, or an hour of them, fails the job."""
    lock_token = submission.new_lock_token()
    try:
        # Read inside: a Redis failing over may refuse it too, and the job must go back in line then as well.
        primary = durable.primary_before_reading(svc)
        return submission.submit(svc, job_id, primary=primary, lock_token=lock_token, account=account)
    except Exception as exc:
        if isinstance(exc, (NotReplicated, RedisError)):
            # Redis failing over, not BFL: the job goes back in line as it was once Redis answers, and nothing is
            # paused (else it would hold its slot until the sweep finds its submission's lease over).
            durable.record_durably(svc, lambda: _back_in_line(svc, job_id, lock_token))
            raise
        job = svc.jobs.get(job_id)
        if job is None or job.status != st.QUEUED:
            raise  # gone or moved on meanwhile: nothing of it to fail
        if isinstance(exc, RetryableError) and not schedule.timed_out(job.created_at, time.time()):
            submission.wait_for_room(svc, job, None)
            raise
        message = exc.message if isinstance(exc, FluxhookError) else f"submission failed: {type(exc).__name__}"
        code = "insufficient_credits" if getattr(exc, "code", None) == "insufficient_credits" else "bfl_error"
        svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                            error={"code": code, "message": message},
                            effects=[ReleaseBudget.of(job), *accounting.on_end(job, st.FAILED, time.time())])
        task_inputs.drop(svc, job.id)
        if not isinstance(exc, BFLError):
            raise
        return st.FAILED


def _back_in_line(svc: Services, job_id: str, lock_token: str) -> bool:
    """A submission cut off by Redis failing over: its lock goes (its release may have been lost with the old
    primary, and would hold the job's next send for the lock's whole life) and the job goes back in line;
    unless another sender holds the job's lock by now (the new primary had lost this one's turn and gave the
    job another): that sender alone may send it, and its slot is not this one's to give back."""
    locks, lock = svc.store.locks, svc.store.keys.submit_lock(job_id)
    if not locks.release(lock, lock_token) and locks.holder(lock) is not None:
        return True
    job = svc.jobs.get(job_id)
    return job is None or svc.slots.requeue(job)
