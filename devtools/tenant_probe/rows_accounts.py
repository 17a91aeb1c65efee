"""Row 52: BFL accounts apart. Each account's polls and checks have capacity of their own (``worker/checkers.py``: each
account its own checkers, its own check line, ``store/check_line.py``): account X answering its polls after 10 s holds
X's checkers, and Y's job that BFL fails is failed as soon as with X idle.

The probe's stack has one BFL account; this row runs a stack of its own with two (``devtools.stack``: its own Redis,
one simulator serving accounts x and y, the Procfile's web and worker at their defaults), stopped at the row's end.
Tenant X's key sends through account x only, tenant Y's through y only. X floods failure hints on its own running jobs'
callback URLs (each hint puts the job's check in x's line at once, and only BFL's answer to that poll ends a job), so
x's checkers are held 10 s by each poll; BFL fails Y's jobs, first with X idle, then under the flood. The row reads x's
check line's length from Redis for a figure (ZCARD), nothing else."""

from __future__ import annotations

import threading
import time

import redis

from fluxhook.core.config import field_default
from fluxhook.store.keys import KEYS

from ..processes import free_port
from ..stack import Stack
from .harness import SENT, TERMINAL, Api, Bfl, Probe, Row, codes, local_session, settle, wait_job
from .rows_checks import POLL_SECONDS

# How long BFL takes to answer a poll of account x's tasks in this row; y's answer in POLL_SECONDS, as BFL does.
X_POLL_SECONDS = 10.0
# Y's job reads failed within this of BFL failing it, under X's flood as alone.
WITHIN = 1.1
# The worker's checkers of each account: WORKER_CHECK_CONCURRENCY, which the row's stack leaves at its default.
CHECKERS = int(field_default("worker_check_concurrency"))
# X's running jobs, whose hints hold x's checkers; Y's jobs BFL fails alone, then under the flood.
X_JOBS = 4 * CHECKERS
SAMPLES = 3
# How long X's flood runs before Y's first job fails: x's checkers all in a poll, its line holding more.
FLOOD_FIRST = 3.0
# What the row takes, about: its stack's start (20 s on a loaded machine), the jobs, the flood, the stop.
ROW_SECONDS = 90


def _account_stack(p: Probe) -> Stack:
    var_dir = p.var_dir / "accounts"
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "PORT": str(port),
           "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    return Stack(env=env, var_dir=var_dir, accounts=("x", "y"), host="127.0.0.1")


def _tenant(admin: Api, name: str, account: str) -> Api:
    key = admin.post("/v1/keys", {"name": name, "accounts": [account], "reads_per_minute": 1_000_000})
    key.raise_for_status()
    body = key.json()
    return Api(admin.base, body["key"], body["id"])


def _fail_and_time(bfl: Bfl, api: Api, job_id: str) -> tuple[dict, float]:
    """BFL fails the job's running task, calling back on the job's own URL: the job once it ended (or after 30 s),
    and the seconds from BFL's failure to the job's end as its owner reads it."""
    task_id = api.job(job_id)["bfl_id"]
    started = time.time()
    bfl.http.post(f"{bfl.base}/_sim/tasks/{task_id}/complete", json={"outcome": "error"}, timeout=30)
    job, _ = wait_job(api, job_id, lambda j: j["status"] in TERMINAL, 30)
    return job, time.time() - started


def _submitted(api: Api, prompts: list[str]) -> list[str]:
    jobs = [api.submit(prompt).json()["id"] for prompt in prompts]
    for job_id in jobs:
        wait_job(api, job_id, lambda j: j["status"] in SENT, 30)
    return jobs


def row_slow_account(p: Probe) -> Row:
    """52. BFL answers account x's polls after 10 s; X floods failure hints on its 8 jobs running at x, holding x's
    checkers; BFL fails 3 of Y's jobs at account y, alone and then in the flood: each is failed within 1.1 s of BFL's
    failure."""
    stack = _account_stack(p)
    try:
        stack.start()
        base = stack.base_url
        admin = Api(base, stack.env["API_TOKENS"].split(",")[0])
        if not settle(lambda: admin.get("/readyz").status_code == 200, 60, interval=0.2):
            raise RuntimeError(f"the accounts' stack is not ready after 60 s; see {stack.var_dir}")
        line = redis.Redis.from_url(stack.env["REDIS_URL"])
        x_bfl, y_bfl = Bfl(stack.sim_accounts["x"].base), Bfl(stack.sim_accounts["y"].base)
        for bfl in (x_bfl, y_bfl):
            bfl.settings(submit_delay=1.0, any_model=True, poll_delay=POLL_SECONDS)
        x, y = _tenant(admin, "x-slow-account", "x"), _tenant(admin, "y-other-account", "y")
        x_jobs = _submitted(x, [f"[pending] X's job {n} at a slow account" for n in range(X_JOBS)])
        y_jobs = _submitted(y, [f"[pending] Y's job {n}, which BFL fails" for n in range(2 * SAMPLES)])
        alone = [_fail_and_time(y_bfl, y, job_id) for job_id in y_jobs[:SAMPLES]]

        x_bfl.settings(poll_delay=X_POLL_SECONDS)
        hook_urls = [x_bfl.task_state(x.job(job_id)["bfl_id"]).get("webhook_url") or "" for job_id in x_jobs]
        tasks = [x.job(job_id)["bfl_id"] for job_id in x_jobs]
        stop = threading.Event()
        answers: list[int] = []

        def flood() -> None:
            session, n = local_session(), 0
            while not stop.is_set():
                answer = session.post(hook_urls[n % len(hook_urls)], timeout=10,
                                      json={"id": tasks[n % len(tasks)], "status": "Error"})
                answers.append(answer.status_code)
                n += 1
                stop.wait(0.05)

        flooding = threading.Thread(target=flood, daemon=True)
        flooding.start()
        try:
            time.sleep(FLOOD_FIRST)  # x's checkers each in a 10 s poll, x's line holding the rest
            lines = []
            flooded = []
            for job_id in y_jobs[SAMPLES:]:
                lines.append(int(line.zcard(KEYS.check_line("x"))))
                flooded.append(_fail_and_time(y_bfl, y, job_id))
        finally:
            stop.set()
            flooding.join(timeout=15)
        x_states = [x.job(job_id) for job_id in x_jobs]
        x_ended = sum(1 for j in x_states if j.get("status") in TERMINAL)
        x_polls = sum(x_bfl.polls(task) for task in tasks)
    finally:
        stack.stop()
    worst_alone, worst = max(t for _, t in alone), max(t for _, t in flooded)
    all_failed = all(job.get("status") == "failed" for job, _ in (*alone, *flooded))
    holds = all_failed and worst <= WITHIN and worst_alone <= WITHIN and x_ended == 0
    return Row(f"account x answers polls after {X_POLL_SECONDS:g} s; X's {len(answers)} failure hints on its "
               f"{len(x_jobs)} jobs there; BFL fails {SAMPLES} of Y's jobs at account y",
               f"{codes(answers)}; x's line {'/'.join(map(str, lines))} as each of Y's failed; {x_polls} polls of "
               f"X's tasks; X's jobs ended {x_ended}",
               f"Y's jobs failed: alone {_times(alone)} s, with x slow {_times(flooded)} s; all failed: {all_failed}",
               f"worst {worst:.2f} s vs alone {worst_alone:.2f} s (bound {WITHIN:g} s; x's {CHECKERS} checkers held "
               f"{X_POLL_SECONDS:g} s a poll)", holds)


def _times(samples: list[tuple[dict, float]]) -> str:
    return " ".join(f"{ended:.2f}" for _, ended in samples)


ROWS = (row_slow_account,)
