"""A submission whose answer never came (a timeout after it was sent, a cut connection, a 504), made by a worker's
sender or within the request that creates the job (docs/callbacks.md, docs/accounts.md): BFL may have the task and
charge for it, so it is never sent again, through this account or another. The job is ``submitted`` without a task,
keeps its slot at the account, and counts its price's bound as spent while BFL has not said; it waits for BFL's callback
to its own URL, proven by its own secret, which names the task: the job then follows that task as any other (polled,
stored), and BFL's stated price settles the bound. Without one by the task's deadline it fails, saying so. """

from __future__ import annotations

import logging
import time
from typing import Any

from fluxhook import metrics
from fluxhook.bfl.reports import BFLReport, parse_callback
from fluxhook.core import job as st
from fluxhook.core.accounts import Account
from fluxhook.core.bfl_limits import TASK_DEADLINE
from fluxhook.core.catalog import first_poll_at
from fluxhook.core.job import Job
from fluxhook.core.outcomes import SKIPPED, CheckOutcome
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import durable, task_inputs, timeline
from fluxhook.lifecycle.steps.applying import apply_report, from_callback
from fluxhook.services import Services
from fluxhook.store.effects import ReleaseBudget

log = logging.getLogger("fluxhook.reconciling")

# BFL ends every task within its deadline: a callback not come by then never will.
UNCERTAIN_FOR = TASK_DEADLINE


def await_task(svc: Services, job: Job, account: Account, reserved: int = 0) -> str:
    """The submission of ``job`` through ``account`` may have reached BFL: record it ``submitted`` without its task,
    ``reserved`` (micro-credits, its price's bound) spent in place of its reservation, and wait for BFL's callback;
    ``submitted``."""
    now = time.time()
    # BFL states no price without an answer: the bound counts against every limit until its result says.
    fields, effects = accounting.on_submitted(job.model or "", None, reserved, now, key_id=job.key_id,
                                              account=account.name, end_user=job.end_user)
    effects.append(ReleaseBudget.of(job, account.name))
    recorded = durable.record_durably(svc, lambda: svc.jobs.transition(
        job.id, st.SUBMITTED, only_from=(st.QUEUED,), uncertain_at=now, account=account.name, submitted_at=now,
        input=None, due=now + UNCERTAIN_FOR, effects=effects, **fields))
    if not recorded:
        metrics.record(svc, effects)  # the job is gone, but BFL may charge for the task
        return SKIPPED
    if job.input is None:
        task_inputs.drop(svc, job.id)  # it is never sent again: an input that waited in storage goes
    timeline.record(svc, job.id, "submission", outcome="uncertain", account=account.name)
    log.warning("submission may have reached BFL: waiting for its callback, not sent again",
                extra={"job_id": job.id, "account": account.name})
    # BFL's callback may have come before the answer's timeout, kept for the job: it names the task now.
    body = svc.store.kept.take_for_job(job.id)
    if body is not None:
        report = parse_callback(body)  # it was read once already, before it was kept
        waiting = svc.jobs.get(job.id)
        if waiting is not None and adopt_task(svc, waiting, report):
            apply_report(svc, job.id, report, from_callback(), model=waiting.model)
    return st.SUBMITTED


def awaits_task(job: Job) -> bool:
    """Whether ``job`` is submitted without a task: its submission's answer never came, and BFL has not named it."""
    return job.uncertain_at is not None and not job.bfl_id


def adopt_task(svc: Services, job: Job, report: BFLReport, **known: Any) -> bool:
    """BFL's proven callback names the task of ``job``, whose submission's answer never came: the job follows that
    task from now on (its price settles the bound counted meanwhile); ``known``: more of the task's fields, when
    BFL's answer to the submission names it. True if the job took the task."""
    if job.status != st.SUBMITTED or not awaits_task(job):
        return False
    now = time.time()
    # Read, then written: BFL has one task for the job (it was sent once), so two callbacks name the same one.
    moved = svc.jobs.update(job.id, only_in=(st.SUBMITTED,), bfl_id=report.bfl_id, bfl_status=st.BFL_PENDING,
                            due=first_poll_at(svc.config.catalog.get(job.model or ""), now,
                                              svc.config.callback_grace_seconds), **known)
    if moved:
        timeline.record(svc, job.id, "submission", outcome="reconciled", bfl_id=report.bfl_id)
        log.info("uncertain submission reconciled by BFL's callback", extra={"job_id": job.id,
                                                                          "bfl_id": report.bfl_id})
    return moved


def adopt_answer(svc: Services, job_id: str, task: dict) -> bool:
    """BFL's answer to a submission that hung past its lease, its job taken since for one that may be at BFL: the
    job follows the task the answer names, and the price it states settles the bound counted meanwhile (as a
    result's does, when the job ends). True if the job took the task."""
    job = svc.jobs.get(job_id)
    if job is None:
        return False
    cost = task.get("cost")
    return adopt_task(svc, job, BFLReport(bfl_id=task["id"], status=st.BFL_PENDING), polling_url=task["polling_url"],
                      **(cost.fields() if cost is not None else {}))


def check_uncertain(svc: Services, job: Job, now: float) -> CheckOutcome:
    """The sweep's look at a job waiting for the callback of an uncertain submission: on until the deadline, then
    failed (never sent again)."""
    if now < (job.uncertain_at or now) + UNCERTAIN_FOR:
        svc.jobs.update(job.id, only_in=(st.SUBMITTED,), due=(job.uncertain_at or now) + UNCERTAIN_FOR)
        return CheckOutcome.RESCHEDULED
    message = ("BFL did not answer the submission, nor call back within the task's hour; it was not sent again, "
               "so nothing was paid twice")
    # Its bound stays spent: BFL may have charged for a task it never called back about.
    if svc.jobs.transition(job.id, st.FAILED, only_from=(st.SUBMITTED,), input=None,
                           error={"code": "bfl_unavailable", "message": message},
                           effects=accounting.on_end(job, st.FAILED, now)):
        task_inputs.drop(svc, job.id)
        log.warning("uncertain submission never reconciled", extra={"job_id": job.id})
    return CheckOutcome.TIMEOUT
