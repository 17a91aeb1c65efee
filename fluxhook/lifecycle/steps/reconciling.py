"""A submission whose answer never came (a timeout after it was sent, a cut connection, a 504), with several BFL
accounts (SPEC §14): BFL may have the task and charge for it, so it is never sent again, through this account or
another. The job keeps its slot at the account and waits ``queued`` for BFL's callback to its own URL, proven by its
own secret, which names the task: the job then records it as submitted and goes on as any other (polled, stored).
Without one by the task's deadline it fails, saying so.
"""

from __future__ import annotations

import logging
import time

from fluxhook.bfl.reports import BFLReport, parse_callback
from fluxhook.core import transitions as st
from fluxhook.core.accounts import Account
from fluxhook.core.bfl_limits import TASK_DEADLINE
from fluxhook.core.catalog import first_poll_at
from fluxhook.core.job import Job
from fluxhook.core.outcomes import CheckOutcome
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import task_inputs, timeline
from fluxhook.lifecycle.steps.applying import apply_report, from_callback
from fluxhook.services import Services
from fluxhook.store.effects import ReleaseBudget

log = logging.getLogger("fluxhook.reconciling")

# BFL ends every task within its deadline: a callback not come by then never will.
UNCERTAIN_FOR = TASK_DEADLINE


def await_task(svc: Services, job: Job, account: Account) -> str:
    """The submission of ``job`` through ``account`` may have reached BFL: wait for BFL's callback; ``queued``."""
    now = time.time()
    svc.jobs.update(job.id, only_in=(st.QUEUED,), uncertain_at=now, account=account.name, due=now + UNCERTAIN_FOR)
    timeline.record(svc, job.id, "submission", outcome="uncertain", account=account.name)
    log.warning("submission may have reached BFL: waiting for its callback, not sent again",
                extra={"job_id": job.id, "account": account.name})
    # BFL's callback may have come before the answer's timeout, kept for the job: it names the task now.
    body = svc.store.kept.take_for_job(job.id)
    if body is not None:
        report = parse_callback(body)  # it was read once already, before it was kept
        recorded = svc.jobs.get(job.id)
        if recorded is not None and adopt_task(svc, recorded, report):
            apply_report(svc, job.id, report, from_callback())
    return st.QUEUED


def adopt_task(svc: Services, job: Job, report: BFLReport) -> bool:
    """BFL's proven callback names the task of ``job``, whose submission's answer never came: record it as
    submitted (its price counts when BFL states it). True if the job took the task."""
    if job.status != st.QUEUED or job.uncertain_at is None:
        return False
    now = time.time()
    fields, effects = accounting.on_submitted(job.model or "", None, 0, now, key_id=job.key_id,
                                              account=svc.config.account(job.account).name)
    effects.append(ReleaseBudget(job.id, job.key_id, job.account))
    moved = svc.jobs.transition(job.id, st.SUBMITTED, only_from=(st.QUEUED,), bfl_id=report.bfl_id,
                                bfl_status=st.BFL_PENDING, input=None, submitted_at=now,
                                due=first_poll_at(svc.config.catalog.get(job.model or ""), now,
                                                  svc.config.callback_grace_seconds),
                                effects=effects, **fields)
    if moved:
        timeline.record(svc, job.id, "submission", outcome="reconciled", bfl_id=report.bfl_id)
        log.info("uncertain submission reconciled by BFL's callback", extra={"job_id": job.id,
                                                                          "bfl_id": report.bfl_id})
        if job.input is None:
            task_inputs.drop(svc, job.id)
    return bool(moved)


def check_uncertain(svc: Services, job: Job, now: float) -> CheckOutcome:
    """The sweep's look at a job waiting for the callback of an uncertain submission: on until the deadline, then
    failed (never sent again)."""
    if now < (job.uncertain_at or now) + UNCERTAIN_FOR:
        svc.jobs.update(job.id, only_in=(st.QUEUED,), due=(job.uncertain_at or now) + UNCERTAIN_FOR)
        return CheckOutcome.RESCHEDULED
    message = ("BFL did not answer the submission, nor call back within the task's hour; it was not sent again, "
               "so nothing was paid twice")
    if svc.jobs.transition(job.id, st.FAILED, only_from=(st.QUEUED,), input=None,
                           error={"code": "bfl_unavailable", "message": message},
                           effects=[ReleaseBudget(job.id, job.key_id, job.account),
                                    *accounting.on_end(job, st.FAILED, now)]):
        task_inputs.drop(svc, job.id)
        log.warning("uncertain submission never reconciled", extra={"job_id": job.id})
    return CheckOutcome.TIMEOUT
