"""Helpers of the usage, budget and provenance tests: jobs taken through fluxhook's own paths in this process."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

from devtools.processes import free_port, wait_until
from fluxhook.core import job as st
from fluxhook.core.accounts import pool_for
from fluxhook.core.job import Job, new_job_id
from fluxhook.credits import accounting
from fluxhook.lifecycle.steps import submission
from fluxhook.lifecycle.steps.applying import POLLED, apply_report
from fluxhook.lifecycle.steps.polling import poll_job
from fluxhook.lifecycle.storing import download_and_store
from fluxhook.store.effects import ReleaseBudget
from fluxhook.store.keys import KEYS
from helpers import stack_on_db, wait_sim_ready


@contextlib.contextmanager
def budget_stack(redis_server, simulator, spy_port: int, var_dir: Path, db: int, limit: float,
                 **overrides: str) -> Iterator[tuple]:
    """The Procfile's processes (gunicorn's two web workers) with ``BFL_DAILY_CREDIT_LIMIT`` = ``limit`` on Redis
    database ``db``, and another web process beside them in this test process: (the stack, that one's API).
    ``overrides``: more of their environment."""
    from werkzeug.serving import make_server

    from conftest import API, serve_in_thread
    from fluxhook.core.config import Config
    from receiver import create_app

    with stack_on_db(redis_server, simulator, spy_port, var_dir, db, BFL_DAILY_CREDIT_LIMIT=str(limit),
                     **overrides) as running:
        port = free_port()
        server = make_server("127.0.0.1", port, create_app(Config.from_env(dict(running.env, PORT=str(port)))),
                             threaded=True)
        serve_in_thread(server)
        try:
            yield running, API(f"http://127.0.0.1:{port}")
        finally:
            server.shutdown()


def priced_within_catalog(svc) -> None:
    """As after BFL has priced a request of each model within its catalog entry: each request is then bounded by
    the entry, not sent alone as a model's first is (``budget.most``)."""
    for name, entry in svc.config.catalog.models.items():
        if entry.price is not None:
            svc.store.prices.mark_within(name, repr(entry.price))


def submit_job(svc, prompt: str, model: str = "flux-2-pro", **fields) -> Job:
    """What ``POST /v1/jobs`` does: admit within the budget, create, take a slot, submit; the job as recorded."""
    now = time.time()
    job = Job(id=new_job_id(now), status=st.QUEUED, model=model, input={"prompt": prompt, **fields},
              pool=pool_for(model, svc.config.bfl_model_limits), created_at=now, updated_at=now)
    submission.check_budget(svc, job)
    svc.jobs.create(job)
    assert svc.slots.acquire(job)
    submission.submit(svc, job.id)
    return svc.jobs.get(job.id)


def finish_job(svc, sim, job: Job) -> Job:
    """Let the simulator finish the task, learn it by a poll and download the result, as a worker would."""
    wait_sim_ready(sim, job.bfl_id)
    report = poll_job(svc, svc.jobs.get(job.id))
    apply_report(svc, job.id, report, POLLED)
    if svc.jobs.get(job.id).status == st.READY:
        download_and_store(svc, job.id, last_attempt=True)
    return svc.jobs.get(job.id)


def start_a_fresh_day(running, admin) -> None:
    """On ``running``'s database, as on a new day: no job, no spend, no reservation (the account's or a key's), no
    model sent alone for a price above the catalog's. Once every job of the tests before is gone and none is being
    sent: a send still out when the day's records go would spend on the new day what it reserved on the old."""
    import redis

    from fluxhook.credits import accounting
    from fluxhook.store.keys import KEYS
    from fluxhook.store.usage import UsageStore

    def cleared() -> bool:
        jobs = admin.get("/v1/jobs", params={"limit": 100}).json()["jobs"]
        for job in jobs:
            admin.delete(f"/v1/jobs/{job['id']}")
        return not jobs

    connection = redis.Redis.from_url(running.env["REDIS_URL"])
    try:
        wait_until(cleared, timeout=30, interval=0.2, message="the jobs of the tests before to be gone")
        wait_until(lambda: UsageStore(connection).reserved(time.time()) == 0, timeout=60, interval=0.2,
                   message="their sends to be answered")
        connection.delete(KEYS.usage(accounting.utc_day(time.time())), KEYS.budget_held, KEYS.prices_over_catalog,
                          *connection.scan_iter(KEYS.key_budget_held("*")))
    finally:
        connection.close()


class Clock:
    """Now, and job ids made in creation order (the budget's tests give the scripts their clock)."""

    def __init__(self) -> None:
        self.now = time.time()

    def job_id(self) -> str:
        self.now += 0.01
        return new_job_id(self.now)


def settle(svc, job_id: str, credits: float, now: float, key_id: str | None = None) -> None:
    """BFL answered the job's submission: its price is spent in place of its reservation (as ``_submit`` records it)."""
    day = accounting.utc_day(now)
    svc.redis.hincrby(KEYS.usage(day), accounting.SPENT, int(credits * accounting.MICRO))
    if key_id:
        svc.redis.hincrby(KEYS.usage(day), accounting.spent_field(key_id), int(credits * accounting.MICRO))
    svc.store.effects.apply([ReleaseBudget(job_id, key_id)])


# The budget's unit tests' requests: one the catalog bounds, one it cannot, and flux-2-max at its largest.
PRO = "flux-2-pro"
ONE_MP = {"prompt": "x", "width": 1000, "height": 1000}  # the catalog bounds it at 3 credits
VIDEO = "flux-3-video"  # BFL publishes no price for it: it goes alone
LARGE = {"prompt": "x", "width": 4096, "height": 4096}  # flux-2-max at its largest: bound 17 credits


def limited_services(make_services, db: int, limit: float):
    """Services on Redis database ``db`` under a daily limit of ``limit`` credits, flux-2-pro priced within its
    catalog entry (so its requests are bounded by it)."""
    svc = make_services(db, BFL_DAILY_CREDIT_LIMIT=str(limit))
    priced_within_catalog(svc)
    return svc
