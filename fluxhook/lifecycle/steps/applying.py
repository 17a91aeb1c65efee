"""What a report from BFL does to a job: one path for callbacks and polls alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from fluxhook import metrics
from fluxhook.bfl.reports import BFLReport
from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.core.live import Shown
from fluxhook.core.outcomes import ReportOutcome
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import end_user_limits, erasing, running_on
from fluxhook.lifecycle.steps.confirming import check_now
from fluxhook.lifecycle.steps.enqueueing import download_lock, download_task, enqueue_download, queue_handed
from fluxhook.lifecycle.steps.schedule import READY_FIRST_CHECK
from fluxhook.store.effects import Effect
from fluxhook.store.jobs import Change, Terms

# Hints reach BFL at most once per job in this many seconds: anyone holding an account's static secret can send
# them, and each poll is a request on the account's key at BFL, shared by every tenant.
HINT_GAP = 5

if TYPE_CHECKING:
    from fluxhook.services import Services

# What to record with a report's outcome (a timeline entry, metrics), given the outcome.
Notes = Callable[[ReportOutcome], Sequence[Effect]]


@dataclass(frozen=True)
class Origin:
    """How a report from BFL came, and so how far it is believed."""

    # Where it came from, as the job records it: "poll" or "webhook".
    source: str
    # BFL's own answer to a poll: only then may a failure end the job (else it only queues a check).
    confirmed: bool
    # Whether a callback proved its secret.
    proven: bool = True
    # The counter an applied report adds to (``attempts.<attempt>``).
    attempt: str | None = None


POLLED = Origin("poll", confirmed=True)


def from_callback(proven: bool = True) -> Origin:
    """A callback's report, counted in ``attempts.webhooks``: a failure in it is believed once a poll agrees."""
    return Origin("webhook", confirmed=False, proven=proven, attempt="webhooks")


def _no_notes(outcome: ReportOutcome) -> Sequence[Effect]:
    return ()


def apply_report(svc: "Services", job_id: str, report: BFLReport, origin: Origin, *, job: Job | None = None,
                 expect_task: str | None = None, model: str | None = None, notes: Notes = _no_notes) -> ReportOutcome:
    """Apply BFL's ``report``, come as ``origin`` says, to the job; returns what became of it (``outcome.applied``
    says whether it was).

    ``expect_task``: the task the report must be about (a callback's), else ``ReportOutcome.OTHER_TASK`` or, while the
    job does not know its task yet, ``ReportOutcome.NOT_SUBMITTED``; a job that is gone is ``ReportOutcome.GONE``.
    ``model``: the job's, when the caller knows it without ``job`` (a callback's token names it); with neither, or a
    job that has none (a task tracked without one), the step reads it.
    ``notes(outcome)``: what to record with it.
    """
    if expect_task is not None:
        task_id = expect_task
    else:
        task_id = (job.bfl_id or "") if job is not None else ""
    if report.status == st.BFL_READY and (job is None or not job.terminal):
        # The common case needs nothing read first: the job moves, its download is queued, and the
        # notes are recorded in one step, or nothing happens.
        change = accept_ready(svc, job_id, task_id, report, origin, model=job.model if job is not None else model,
                              effects=notes(ReportOutcome.DOWNLOAD_QUEUED))
        if change.moved and change.locked:
            return ReportOutcome.DOWNLOAD_QUEUED
        if change.moved:
            # Not locked: the download still running since BFL took back an earlier Ready finds this URL.
            metrics.record(svc, notes(ReportOutcome.DUPLICATE))
            return ReportOutcome.DUPLICATE
        job = None  # it did not move: read it as it is now
    job = job or svc.jobs.get(job_id)
    if job is None:
        return ReportOutcome.GONE
    if expect_task is not None and job.bfl_id != expect_task:
        return ReportOutcome.OTHER_TASK if job.bfl_id else ReportOutcome.NOT_SUBMITTED
    if origin.attempt is not None:
        svc.jobs.count(job_id, origin.attempt)
    outcome = _apply_to(svc, job, report, origin)
    metrics.record(svc, notes(outcome))
    if outcome == ReportOutcome.SLOT_FREED:
        # After its notes: a job a DELETE asked for goes as its slot does, leaving no entry behind.
        erasing.erase_if_asked(svc, job.id)
    return outcome


def _apply_to(svc: "Services", job: Job, report: BFLReport, origin: Origin) -> ReportOutcome:
    if job.terminal:
        # It changes no more; the slot it may keep for a task BFL ran on is free once BFL says the task ended.
        return running_on.on_report(svc, job, report)
    if report.status == st.BFL_READY:
        if job.status != st.READY:
            return ReportOutcome.DUPLICATE  # apply_report's move to ready was refused: the job is past it
        if origin.proven and not job.ready_proven:
            # A proven report outranks the unproven one the job acted on; the running download
            # will find the new URL when it rechecks.
            svc.jobs.update(job.id, only_in=(st.READY,), result_url=report.sample_url, ready_proven=True,
                            draft_cache_source=report.draft_cache_url)
        # A job already ready may have lost its download to a crash between recording and queueing:
        # the lock in enqueue_download lets a repeated Ready repair that without a second download.
        return ReportOutcome.DOWNLOAD_QUEUED if enqueue_download(svc, job.id, job.model) else ReportOutcome.DUPLICATE
    if st.is_running(report.status):
        # Pending, or any word BFL added (Reasoning, Generating): still running. Only while BFL has not
        # reported otherwise (a late one must not overwrite a Ready), and never backwards (core.live).
        svc.jobs.show_running(job.id, Shown(report.status, report.progress), only_in=(st.QUEUED, st.SUBMITTED))
        return ReportOutcome.PENDING
    if not origin.confirmed:
        # A callback could be replayed or forged: only BFL's own answer to a poll may end the job.
        check_now(svc, job.id)
        return ReportOutcome.CONFIRM_QUEUED
    new_status, code, message = st.terminal_outcome(report.status)
    if report.message and code == "bfl_error":
        message = f"{message}: {report.message}"
    moved = svc.jobs.transition(job.id, new_status, bfl_status=report.status, source=origin.source,
                                error={"code": code, "message": message},
                                effects=accounting.on_end(job, new_status, time.time()))
    if moved and new_status == st.MODERATED and job.end_user is not None:
        end_user_limits.after_moderated(svc, job)  # its end user may be blocked now: its jobs waiting end
    return ReportOutcome.FINISHED if moved else ReportOutcome.DUPLICATE


def hint(svc: "Services", job: Job, *, attempt: str | None = None, notes: Notes = _no_notes) -> ReportOutcome:
    """A report that proves nothing of ``job``'s task, whatever it says (the static URL's: every app of the account
    holds its secret), or a task reported there before the job tracked it: BFL is asked once, with the account's
    key, and only its answer is applied (its check, ``confirming.check_now``). A Ready BFL does not confirm changes
    nothing, and what is downloaded is what BFL's get_result states.

    ``attempt``: the counter the report adds to; ``notes(outcome)``: what to record with it.
    """
    if job.status != st.SUBMITTED:
        # Ready (its download under way) or ended: BFL's word is known already.
        outcome = ReportOutcome.DUPLICATE
    else:
        if attempt is not None:
            svc.jobs.count(job.id, attempt)
        if svc.store.locks.acquire(svc.store.keys.hint_gap(job.id), "1", HINT_GAP):
            check_now(svc, job.id)  # in the check line once, however often reported
        else:
            _poll_by(svc, job.id, time.time() + HINT_GAP)  # one more look once the gap ends, so none is lost
        outcome = ReportOutcome.CONFIRM_QUEUED
    metrics.record(svc, notes(outcome))
    return outcome


def _poll_by(svc: "Services", job_id: str, when: float) -> None:
    """The sweep looks at the submitted job by ``when`` at the latest (a look due sooner stays, and so does its check
    waiting in line, which asks BFL sooner still)."""
    if svc.store.checks.claim_of(job_id) is not None:
        return
    due = svc.jobs.due_at(job_id)
    if due is None or due > when:
        svc.jobs.update(job_id, only_in=(st.SUBMITTED,), due=when)


def accept_ready(svc: "Services", job_id: str, task_id: str, report: BFLReport, origin: Origin, *,
                 model: str | None = None, effects: Sequence[Effect] = ()) -> Change:
    """Move a job submitted as BFL task ``task_id`` to ready and queue its download, with ``effects``, in one step; a
    false Change (a duplicate, another task, no such job) queues nothing. ``model``: the job's, when the caller knows
    it."""
    # The job's model says which download line it joins (its URL's life): read only when the caller does not know it.
    download = download_task(job_id, model if model is not None else svc.jobs.model_of(job_id))
    lock = download_lock(svc.store.keys, job_id)
    terms = Terms(if_equal=("bfl_id", task_id) if task_id else None, count=origin.attempt, lock=lock)
    change = svc.jobs.transition(job_id, st.READY, terms=terms, effects=[download, *effects],
                                 **ready_fields(report, origin))
    queue_handed(svc, change.handed, lock.value)
    return change


def ready_fields(report: BFLReport, origin: Origin) -> dict:
    """What a job moving to ready records of BFL's Ready ``report``, and when the sweep next looks at it."""
    now = time.time()
    # Due again only to check that its download was not lost: a ready job is never polled.
    fields = {"bfl_status": st.BFL_READY, "source": origin.source, "result_url": report.sample_url,
              "ready_proven": origin.proven, "due": now + READY_FIRST_CHECK,
              "finished_at": min(report.finished_at or now, now),
              "draft_cache_source": report.draft_cache_url}
    if report.seed is not None:
        fields["seed"] = report.seed
    if report.cost is not None:
        # BFL's price in its result outranks its answer to the submission; usage counts the difference at the end.
        fields.update(report.cost.fields())
    return fields
