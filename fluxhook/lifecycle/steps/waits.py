"""Why queued jobs wait: for the job JSON, its timeline, the dashboard and a key's ``queued`` count.

A job in line for a slot is asked of the slots as they are when it is read (``store/lua/slots_line_states.lua``
reads them as the dispatch does, ``core.wait_reasons.in_line`` names the reason): the dispatch writes nothing for
it. A wait the slots cannot tell, the budget's or BFL's refusal, is recorded on the job as it begins (``begin``),
with a timeline entry when its reason is new (not at each re-check); the job's move out of ``queued`` drops it
(``JobStore.transition``), and so does its return to line (``back_in_line``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from fluxhook.core import job as st
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import LineState, Place, Waiting, in_line, waiting
from fluxhook.lifecycle.steps import timeline
from fluxhook.services import Services
from fluxhook.store.owners import owner_of


def of_jobs(svc: Services, jobs: Sequence[Job]) -> list[Waiting | None]:
    """Why each of ``jobs`` waits (None for one that does not: not queued, or being sent); one round trip to
    Redis when any is queued, none otherwise."""
    queued = [job for job in jobs if job.status == st.QUEUED]
    if not queued:
        return [None] * len(jobs)
    places, lines = svc.slots.look(queued)
    now = time.time()
    found = {job.id: waiting(job.status, place, line, Waiting.recorded(job.waiting_reason, job.waiting_until), now,
                             bulk=job.batch_id is not None)
             for job, place, line in zip(queued, places, lines, strict=True)}
    return [found.get(job.id) for job in jobs]


def of(svc: Services, job: Job) -> Waiting | None:
    """Why the job waits; None when it does not."""
    return of_jobs(svc, [job])[0]


def begin(svc: Services, job: Job, wait: Waiting) -> None:
    """Record on the queued job (as read before its wait) that it waits for ``wait``, a reason the slots cannot
    tell; its timeline says so when the reason is new. Nothing is written when the job already waits for it
    until the same time (a re-check)."""
    if job.waiting_reason == wait.reason and job.waiting_until == wait.until:
        return
    effects = [] if job.waiting_reason == wait.reason else [timeline.entry(job.id, "waiting", **wait.to_api())]
    svc.jobs.update(job.id, only_in=(st.QUEUED,), waiting_reason=str(wait.reason), waiting_until=wait.until,
                    effects=effects)


def back_in_line(svc: Services, job: Job) -> None:
    """The job's recorded wait is over (it is back in line, where the slots tell why it waits)."""
    if job.waiting_reason is not None:
        svc.jobs.update(job.id, only_in=(st.QUEUED,), waiting_reason=None, waiting_until=None)


def of_joined(job: Job, line: LineState | None) -> Waiting | None:
    """Why a new job that did not get a slot waits, from ``line``: what held it back as it joined its line
    (``Slots.join``), which its timeline got in the same step (``timeline.recent`` names the reason from it), both as
    of the job's creation."""
    return waiting(job.status, Place.LINE, line, None, job.created_at, bulk=job.batch_id is not None)


@dataclass(frozen=True)
class KeyJobs:
    """An app key's jobs now: holding BFL slots (``active``), waiting (``queued``), and how many wait for each
    reason (a job waiting aside whose reason is not recorded counts in ``queued`` only). ``canceled_running``: of
    ``active``, those canceled while BFL runs their tasks on (``running_on``), counted only where a key is shown."""

    active: int = 0
    queued: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    canceled_running: int = 0


def of_keys(svc: Services, key_ids: Sequence[str | None],
            routes: Mapping[str | None, str | None] | None = None) -> dict[str | None, KeyJobs]:
    """Each app key's jobs holding slots and waiting, with why they wait: three round trips, whatever the number
    of jobs in line (a line's jobs of one key in one pool all wait for the same reason, read at the accounts its
    route, from ``routes`` by key id, allows; one of its jobs naming an account of its own may wait for another)."""
    if not key_ids:
        return {}
    owners = {key_id: owner_of(key_id) for key_id in key_ids}
    slots, waiting_jobs = svc.slots.owners_now(list(owners.values()))
    aside = [job_id for owner in owners.values() for job_id in waiting_jobs[owner].aside]
    recorded = dict(zip(aside, svc.jobs.recorded_waits(aside), strict=True)) if aside else {}
    asks = [(pool, owner, (routes or {}).get(key_id)) for key_id, owner in owners.items()
            for pool, count in waiting_jobs[owner].in_line.items() if count]
    lines = dict(zip(asks, svc.slots.line_states(asks), strict=True)) if asks else {}
    now = time.time()
    found = {}
    for key_id, owner in owners.items():
        mine = waiting_jobs[owner]
        reasons: Counter[str] = Counter()
        for pool, count in mine.in_line.items():
            if count:
                # Counted as batch items: while storage holds only those back, a key's single jobs in line are few
                # and brief (they go first).
                reasons[str(in_line(lines[pool, owner, (routes or {}).get(key_id)], now, bulk=True).reason)] += count
        for job_id in mine.aside:
            wait = Waiting.recorded(*recorded[job_id])
            if wait is not None:
                reasons[str(wait.reason)] += 1
        found[key_id] = KeyJobs(active=slots.owner_held.get(owner, 0),
                                queued=sum(mine.in_line.values()) + len(mine.aside), by_reason=dict(sorted(reasons.items())))
    return found


def wake_held(svc: Services, key_id: str | None = None, *, every: bool = False) -> int:
    """A limit that holds queued jobs aside was raised: app key ``key_id``'s (None: the admin tokens') jobs waiting
    aside, or ``every`` key's, are brought due now, so the sweep looks at each at once rather than at its reason's
    end. How many."""
    return svc.slots.wake_aside(None if every else owner_of(key_id), time.time())
