"""Rows 1-5: what the tenants of one BFL account share: the go-alone line, the static callback secret, tracking,
BFL's slow answers and the room for early callbacks."""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from .harness import (
    BFL_ANSWERS_AFTER,
    BOUNDABLE,
    SENT,
    SLOW_BFL,
    TERMINAL,
    UNBOUNDABLE,
    Probe,
    Row,
    codes,
    jobs_in,
    remove_all,
    settle,
    submit_timed,
    wait_job,
)


def row_go_alone(p: Probe) -> Row:
    """1. X queues 60 jobs the catalog cannot bound under the daily limit; V's one boundable job goes within 3 s."""
    x, v = p.tenant("x-alone"), p.tenant("v-alone")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda n: x.submit(f"X's unboundable {n}", model=UNBOUNDABLE), range(60)))
    queued = [a.json()["id"] for a in answers if a.status_code == 202]
    settle(lambda: jobs_in(x, SENT, queued) >= 2, 30, interval=0.2)  # the rest wait with their records in the limit
    mine, job, took = submit_timed(v, "V's one boundable job", 60)
    sent_of_x = jobs_in(x, SENT, queued)
    remove_all(x, queued)
    # Sent within 3 s: BFL's answer, which makes the job submitted, takes its second more.
    holds = mine.status_code == 202 and job.get("status") in SENT and took <= 3 + BFL_ANSWERS_AFTER
    return Row("go-alone line: 60 unboundable jobs, then V's boundable one",
               f"{codes([a.status_code for a in answers])}, {sent_of_x} sent",
               f"{mine.status_code}, {job.get('status')} (waiting {(job.get('waiting') or {}).get('reason')})",
               f"V to submitted {took:.1f} s (limit 3 s + BFL's {BFL_ANSWERS_AFTER:g} s)", holds)


def row_static_ready(p: Probe) -> Row:
    """2. X, holding the account's static secret, says V's running task is Ready with X's own result."""
    v = p.tenant("v-static")  # X needs no key: the static secret is all it uses
    task = p.bfl.task("[pending] V's own task, still running")
    tracked = v.track(task)
    own = p.bfl.task("X's own task, finished")
    x_sample = p.bfl.result(own)["sample"]
    x_bytes = p.bfl.bytes_of(x_sample)
    forged = p.static_post({"id": task, "status": "Ready", "result": {"sample": x_sample}})
    job_id = tracked.json()["id"]
    after, _ = wait_job(v, job_id, lambda j: j["attempts"]["polls"] >= 1 or j["status"] in TERMINAL, 15)
    forged_sha = (after.get("image") or {}).get("sha256")
    p.bfl.complete(task)
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    genuine = p.static_post({"id": task, "status": "Ready", "result": real})
    final, _ = wait_job(v, job_id, lambda j: j["status"] in TERMINAL, 30)
    final_sha = (final.get("image") or {}).get("sha256")
    x_sha = hashlib.sha256(x_bytes).hexdigest()
    holds = forged_sha != x_sha and final.get("status") == "stored" and final_sha == real_sha
    return Row("static-secret Ready with X's result for V's running task",
               f"forged {forged.status_code}, genuine {genuine.status_code}",
               f"after forged: {after.get('status')}; end: {final.get('status')} sha {(final_sha or '-')[:12]}",
               f"X's sha {x_sha[:12]}, BFL's {real_sha[:12]}, {len(x_bytes):,} B of X's", holds)


def row_tracking(p: Probe) -> Row:
    """3. X tracks V's task id before V does: V still gets its own job and its result; X learns nothing of V."""
    x, v = p.tenant("x-track"), p.tenant("v-track")
    task = p.bfl.task("[pending] V's task, whose id X learned")
    x_first = x.track(task, metadata={"by": "x"})
    unknown = x.track(f"unknown-{uuid.uuid4()}")
    v_answer = v.track(task, metadata={"by": "v"})
    x_job, v_job = x_first.json(), v_answer.json()
    reveals = (x_job.get("key_id") == v.key_id or set(x_job) != set(unknown.json())
               or x_first.status_code != unknown.status_code)
    own = v_answer.status_code == 201 and v_job.get("key_id") == v.key_id and v_job.get("id") != x_job.get("id")
    p.bfl.complete(task)
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    p.static_post({"id": task, "status": "Ready", "result": real})
    final, _ = wait_job(v, v_job["id"], lambda j: j["status"] in TERMINAL, 30) if own else ({}, 0)
    final_sha = (final.get("image") or {}).get("sha256")
    holds = own and not reveals and final.get("status") == "stored" and final_sha == real_sha
    return Row("tracking takeover: X tracks V's task first",
               f"{x_first.status_code} (unknown id: {unknown.status_code}), reveals V: {reveals}",
               f"{v_answer.status_code}, own job: {own}, end {final.get('status')}",
               f"V's sha {(final_sha or '-')[:12]} vs BFL's {real_sha[:12]}", holds)


def row_double_send(p: Probe) -> Row:
    """4. BFL slower than the request waits: V's retry with its Idempotency-Key never sends a second task."""
    v = p.tenant("v-slow")
    before = p.bfl.submitted()
    p.bfl.settings(submit_delay=SLOW_BFL)
    try:
        key = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
        body = {"model": "flux-2-pro", "input": {"prompt": "V's job, BFL slow to answer", **BOUNDABLE}}
        first = v.post("/v1/jobs", body, headers=key, timeout=60)
        retry = v.post("/v1/jobs", body, headers=key, timeout=60)
        # A second task, if one was sent, reaches BFL a slow answer after the retry.
        time.sleep(SLOW_BFL + 2)
    finally:
        p.bfl.settings(submit_delay=BFL_ANSWERS_AFTER)
    tasks = p.bfl.submitted() - before
    ids = {r.json().get("id") for r in (first, retry) if r.status_code == 202}
    spent = settle(lambda: p.spent_today(v), 30, interval=0.5) if ids else 0.0
    holds = tasks == 1 and first.status_code == retry.status_code == 202 and len(ids) == 1 and spent > 0
    return Row("slow BFL (22 s > the request's 20 s): V retries with its Idempotency-Key",
               "-", f"{first.status_code} then {retry.status_code} (replayed: {retry.headers.get('Idempotent-Replayed')})",
               f"BFL tasks {tasks}, jobs {len(ids)}, V spent_today {spent:g}", holds)


def row_kept_room(p: Probe) -> Row:
    """5. X floods the static URL with verified callbacks for made-up tasks; V's early callback is still kept."""
    v = p.tenant("v-kept")
    session = requests.Session()
    flood = []
    for _ in range(1100):
        answer = p.static_post({"id": f"made-up-{uuid.uuid4()}", "status": "Ready",
                                "result": {"sample": "https://delivery.example/x.png"}}, session=session)
        flood.append(answer.status_code)
        if answer.status_code >= 300:
            break
    task = p.bfl.task("V's task, done before V tracks it")
    real = p.bfl.result(task)
    real_sha = hashlib.sha256(p.bfl.bytes_of(real["sample"])).hexdigest()
    early = p.static_post({"id": task, "status": "Ready", "result": real})
    tracked = v.track(task)
    final, took = wait_job(v, tracked.json()["id"], lambda j: j["status"] in TERMINAL, 30) \
        if tracked.status_code in (200, 201) else ({}, 0)
    final_sha = (final.get("image") or {}).get("sha256")
    holds = 200 <= early.status_code < 300 and final.get("status") == "stored" and final_sha == real_sha
    return Row("kept-callback room: 1,100 verified callbacks for made-up tasks",
               codes(flood), f"early callback {early.status_code}, track {tracked.status_code}, {final.get('status')}",
               f"V stored {took:.1f} s after tracking, webhooks {final.get('attempts', {}).get('webhooks')}", holds)


ROWS = (row_go_alone, row_static_ready, row_tracking, row_double_send, row_kept_room)
