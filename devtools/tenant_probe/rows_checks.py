"""Rows 46-47: the check line: a failure reported by callback, or a hint on the static URL, puts the job's
check in the line at once (``lifecycle/steps/confirming.check_now``), taken in turns across keys by the worker's check
dispatcher (``worker/checkers.py``, ``store/lua/check_take.lua``), and only BFL's answer to that poll ends the job.

Row 46 floods the line from one key and times another key's real failure through it; row 47 forges failures for
another key's running jobs. Row 46 reads the check line's length from Redis for a figure (ZCARD), nothing else; BFL
answers each poll after ``POLL_SECONDS`` in these rows (the simulator's ``poll_delay``, about BFL's own), so that a
check costs a checker what it costs in production and a backlog lasts as long as BFL makes it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fluxhook.core.config import field_default
from fluxhook.store.keys import KEYS

from ..stack import SIMULATOR_KEY
from .harness import SENT, TERMINAL, Api, Probe, Row, codes, local_session, remove_all, settle, wait_job

# Seconds BFL takes to answer a poll in these rows (the simulator's poll_delay; BFL's is about 0.3 s).
POLL_SECONDS = 0.3
# The worker's checkers: WORKER_CHECK_CONCURRENCY, which the probe's stack leaves at its default.
CHECKERS = int(field_default("worker_check_concurrency"))
# A's jobs: tracked tasks BFL keeps running ([pending]) for the whole row.
FLOOD_JOBS = 150
# A's threads posting failure hints on the static URL, round and round its jobs.
FLOOD_THREADS = 2
# The line A's hints fill before B's failure comes (checks waiting), and how long the row waits for it at most.
FULL_LINE = 100
FILL_SECONDS = 20.0
# How long the line is held full before B's jobs fail, and how many of B's jobs fail, alone and then under the flood.
HELD_FULL = 3.0
SAMPLES = 3
# A's flood goes on this long after B's last job ended, so B's check met A's backlog from the start to the end.
FLOOD_AFTER = 2.0
# What B's wait under the flood may add to its wait alone. The design delays another key's check "by the checks
# already running, not by the backlog" (store/check_line.py): when B's check joins the line every checker may be in
# one of A's polls (side by side: one BFL answer, POLL_SECONDS) before B's is taken, its turn the next. One turn, a
# second as margin, and half a second for a loaded 2-core machine's web and worker.
TURNS = 2
SLACK = 0.5
BOUND = TURNS * POLL_SECONDS + SLACK
# What the rows take, about (45 s measured): A's tasks and tracks, B alone, the flood, the clean-up; then row 47.
ROW_SECONDS = 60


def _sim_settings(p: Probe) -> dict:
    return p.bfl.http.get(f"{p.bfl.base}/_sim/settings", timeout=10).json()


def _end_task(p: Probe, task_id: str, outcome: str, session: Any = None) -> None:
    """BFL ends the task now with ``outcome`` (ready, error...), calling back where it was told to."""
    (session or p.bfl.http).post(f"{p.bfl.base}/_sim/tasks/{task_id}/complete", json={"outcome": outcome}, timeout=30)


def _polls(p: Probe) -> dict[str, int]:
    """How many times BFL was polled for each task since it started."""
    return p.bfl.http.get(f"{p.bfl.base}/_sim/stats", timeout=30).json()["polls"]


def _check_line(p: Probe) -> int:
    return int(p.redis.zcard(KEYS.check_line()))


def _bfl_tasks(p: Probe, prompts: list[str], threads: int = 16) -> list[str]:
    """Tasks an app sends BFL itself (the account's static callback URL, not fluxhook's): their ids."""
    local = threading.local()

    def send(prompt: str) -> str:
        if not hasattr(local, "session"):
            local.session = local_session()
        answer = local.session.post(f"{p.bfl.base}/v1/flux-2-pro", json={"prompt": prompt},
                                    headers={"x-key": SIMULATOR_KEY}, timeout=60)
        answer.raise_for_status()
        return answer.json()["id"]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, prompts))


def _fail_and_time(p: Probe, api: Api, job_id: str, timeout: float = 60) -> tuple[dict, float, float]:
    """BFL fails the job's running task, calling back on the job's own URL: the job once it ended (or as it is after
    ``timeout`` s), the seconds from BFL's failure to the job's end as its owner reads it, and to the callback's
    answer (the simulator's record of it)."""
    task_id = api.job(job_id)["bfl_id"]
    started = time.time()
    _end_task(p, task_id, "error")
    job, _ = wait_job(api, job_id, lambda j: j["status"] in TERMINAL, timeout)
    ended = time.time() - started
    attempts = settle(lambda: p.bfl.task_state(task_id).get("callback_attempts"), 10, interval=0.05) or []
    answered = attempts[0]["at"] - started if attempts else float("nan")
    return job, ended, answered


def row_check_flood(p: Probe) -> Row:
    """46. A floods the static URL with failure reports for its 150 tracked tasks BFL still runs (the check line full,
    BFL answering each poll in 0.3 s); BFL really fails 3 of B's jobs: each is failed within 1.1 s of B's alone, and
    none of A's ends."""
    a, b = p.tenant("a-checks"), p.tenant("b-checks")
    kept = _sim_settings(p)
    marker = f"check-flood-{a.key_id}"
    # Room at BFL for A's tasks beside everyone's, and polls that take BFL's time.
    p.bfl.settings(max_active=kept["max_active"] + FLOOD_JOBS + 10, poll_delay=POLL_SECONDS)
    tasks: list[str] = []
    a_jobs: list[str] = []
    try:
        tasks = _bfl_tasks(p, [f"[pending] A's task {n} {marker}" for n in range(FLOOD_JOBS)])
        with ThreadPoolExecutor(8) as pool:
            tracks = list(pool.map(lambda task: a.track(task), tasks))
        a_jobs = [t.json()["id"] for t in tracks if t.status_code in (200, 201)]
        b_jobs = [b.submit(f"[pending] B's job {n}, which BFL fails").json()["id"] for n in range(2 * SAMPLES)]
        for job_id in b_jobs:
            wait_job(b, job_id, lambda j: j["status"] in SENT, 30)
        # B alone: the line empty but for BFL's own pace.
        alone = [_fail_and_time(p, b, job_id) for job_id in b_jobs[:SAMPLES]]

        polls_before = _polls(p)
        stop = threading.Event()
        answers: list[int] = []
        line_seen: list[int] = []

        def flood(offset: int) -> None:
            session = local_session()
            n = offset
            while not stop.is_set():
                answer = p.static_post({"id": tasks[n % len(tasks)], "status": "Error",
                                        "details": {"message": "forged"}}, session=session)
                answers.append(answer.status_code)
                n += FLOOD_THREADS

        def watch_line() -> None:
            while not stop.is_set():
                line_seen.append(_check_line(p))
                time.sleep(0.2)

        threads = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(FLOOD_THREADS)]
        threads.append(threading.Thread(target=watch_line, daemon=True))
        flood_started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            settle(lambda: _check_line(p) >= FULL_LINE, FILL_SECONDS, interval=0.2)
            filled = time.monotonic() - flood_started
            time.sleep(HELD_FULL)  # every checker busy with A's polls, the line held full behind them
            flooded = []
            lines_at_b = []
            for job_id in b_jobs[SAMPLES:]:
                lines_at_b.append(_check_line(p))
                flooded.append(_fail_and_time(p, b, job_id))
            time.sleep(FLOOD_AFTER)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        flood_seconds = time.monotonic() - flood_started
        polls_after = _polls(p)
        a_polls = sum(polls_after.get(t, 0) - polls_before.get(t, 0) for t in tasks)
        with ThreadPoolExecutor(8) as pool:
            a_states = list(pool.map(lambda job_id: a.job(job_id), a_jobs))
        running = {t["id"] for t in p.bfl.tasks(marker) if t["status"] == "Pending"}
        # A job of A's that ended while BFL still ran its task: ended on a report BFL did not make.
        wrongly = sum(1 for j in a_states if j.get("status") in TERMINAL and j.get("bfl_id") in running)
        a_ended = sum(1 for j in a_states if j.get("status") in TERMINAL)
    finally:
        remove_all(a, a_jobs)
        session = local_session()
        for task in tasks:
            _end_task(p, task, "error", session=session)
        p.bfl.settings(max_active=kept["max_active"], poll_delay=kept["poll_delay"])
    line_at_b = min(lines_at_b)
    fifo = line_at_b * POLL_SECONDS / CHECKERS
    rate = len(answers) / flood_seconds if flood_seconds else 0.0
    worst_alone, worst = max(t for _, t, _ in alone), max(t for _, t, _ in flooded)
    all_failed = all(job.get("status") == "failed" for job, _, _ in (*alone, *flooded))
    holds = (len(a_jobs) == FLOOD_JOBS and all_failed and worst <= worst_alone + BOUND and wrongly == 0
             and line_at_b >= FULL_LINE)
    return Row(f"A's {len(answers):,} failure hints ({rate:.0f}/s) for its {len(a_jobs)} tracked running tasks; "
               f"BFL fails {SAMPLES} of B's jobs in the flood",
               f"{codes(answers)}; line {FULL_LINE}+ after {filled:.1f} s (max {max(line_seen, default=0)}), "
               f"{a_polls} polls of A's tasks in {flood_seconds:.0f} s; A's jobs ended {a_ended} "
               f"({wrongly} while BFL ran them)",
               f"B's jobs failed: alone {_times(alone)} s, under flood {_times(flooded)} s (line "
               f"{'/'.join(map(str, lines_at_b))} as each failed at BFL); all failed: {all_failed}",
               f"worst {worst:.2f} s vs alone {worst_alone:.2f} s, {worst - worst_alone:+.2f} s (bound "
               f"{BOUND:.1f} s: {TURNS} turns of {POLL_SECONDS:g} s + {SLACK:g} s; A's backlog in line order "
               f"{fifo:.1f} s on {CHECKERS} checkers)", holds)


def _times(samples: list[tuple[dict, float, float]]) -> str:
    """Each sample's seconds from BFL's failure to the job failed (callback answered after): ``0.33 (0.01)``."""
    return " ".join(f"{ended:.2f} ({answered:.2f})" for _, ended, answered in samples)


def row_forged_failure(p: Probe) -> Row:
    """47. X forges failures for V's running jobs (one fluxhook sent, one V tracks): on the static URL with the
    account's secret, and unsigned on the sent job's own callback URL, learned: BFL's answer (Pending) keeps both
    submitted, and both end stored."""
    v = p.tenant("v-forged")
    kept_delay = _sim_settings(p)["poll_delay"]
    p.bfl.settings(poll_delay=POLL_SECONDS)  # as row 46: a check takes BFL's time
    try:
        sent = v.submit("[pending] V's job, which X says failed").json()["id"]
        sent_job, _ = wait_job(v, sent, lambda j: j["status"] in SENT, 30)
        own_task = p.bfl.task("[pending] V's own task, tracked, which X says failed")
        tracked = v.track(own_task).json()["id"]
        sent_task = sent_job.get("bfl_id") or ""
        job_url = p.bfl.task_state(sent_task).get("webhook_url") or ""
        polls_before = _polls(p)
        statuses = [p.static_post({"id": task, "status": status}).status_code for task in (sent_task, own_task)
                    for status in ("Error", "Request Moderated")]
        session = local_session()
        statuses += [session.post(job_url, json={"id": sent_task, "status": status}, timeout=10).status_code
                     for status in ("Error", "Content Moderated")] if job_url else []
        # BFL's answer to the checks the forgeries made: each task polled at least once since.
        asked = settle(lambda: all(_polls(p).get(t, 0) > polls_before.get(t, 0) for t in (sent_task, own_task)), 15,
                       interval=0.2)
        time.sleep(2 * POLL_SECONDS + 0.5)  # the answers applied, if they were to end anything
        after = {name: v.job(job_id) for name, job_id in (("sent", sent), ("tracked", tracked))}
        for task in (sent_task, own_task):
            _end_task(p, task, "ready")
        # The tracked task was sent without a callback URL: its Ready comes on the static URL as BFL would send it.
        p.static_post({"id": own_task, "status": "Ready", "result": p.bfl.result(own_task)})
        final = {name: wait_job(v, job_id, lambda j: j["status"] in TERMINAL, 30)[0]
                 for name, job_id in (("sent", sent), ("tracked", tracked))}
    finally:
        p.bfl.settings(poll_delay=kept_delay)
    kept = all(j.get("status") == "submitted" for j in after.values())
    holds = (bool(asked) and bool(job_url) and kept and all(j.get("status") == "stored" for j in final.values()))
    return Row("forged Error / Moderated for V's two running jobs: static URL ×4, V's job URL unsigned ×2",
               codes(statuses),
               "after BFL's answer: " + ", ".join(f"{n} {j.get('status')} ({j.get('bfl_status')}, polls "
                                                  f"{j.get('attempts', {}).get('polls')})" for n, j in after.items())
               + "; end: " + ", ".join(f"{n} {j.get('status')}" for n, j in final.items()),
               f"BFL polled both since: {bool(asked)}; callbacks counted "
               f"{', '.join(str(j.get('attempts', {}).get('webhooks')) for j in after.values())}", holds)


ROWS = (row_check_flood, row_forged_failure)
