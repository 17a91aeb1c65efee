"""Helpers of the cancel and deadline tests (tests/unit/lifecycle/, tests/e2e/jobs/): a queued job made as the API
makes it, what the simulator was sent, and whether fluxhook answered its callback of a task."""

from __future__ import annotations

import time

from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id


def queued_job(svc, prompt: str, *, deadline: float | None = None, key_id: str | None = None,
               send_here: bool = False) -> Job:
    """A queued job made as POST /v1/jobs makes it: recorded with its place in line (and a slot, with ``send_here``)."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model="flux-2-pro", pool=pool_for("flux-2-pro"),
              input={"prompt": prompt}, created_at=now, updated_at=now, deadline=deadline, key_id=key_id)
    svc.slots.acquire(job, send_here=send_here, creation=svc.jobs.creation(job))
    return svc.jobs.get(job.id)


def sent_prompts(sim) -> list[str]:
    """The prompts of every task the simulator was sent since its last reset (its control API's task list)."""
    return [task["prompt"] for task in sim.control("GET", "/tasks")["tasks"]]


def callback_answered(sim, bfl_id: str) -> bool:
    """Whether fluxhook has answered the simulator's callback for the task."""
    return any(a["status_code"] for a in sim.task(bfl_id)["callback_attempts"])
