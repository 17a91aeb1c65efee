"""Rows 20-22 and 30: ending another's job (docs/api.md "Cancel", "Deadlines"): X cancels V's job by every door, sends
hostile ``Cancel-After`` values, and sets a deadline beside V's job; and X cancels its own running tasks again and
again, to run more of them at BFL than its ``max_active`` ("Canceling frees nothing BFL still uses")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid

from ..processes import ROOT
from .harness import BOUNDABLE, SENT, TERMINAL, Api, Probe, Row, codes, finish, local_session, submit_timed, wait_job
from .sse import raw_request


def cli(*args: str) -> subprocess.CompletedProcess:
    """The ``fluxhook`` command as an app's operator runs it, with no setting but the flags it is given."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env.update(PYTHONPATH=str(ROOT), FLUXHOOK_VAR=str(ROOT / "var" / "no-such-dev-run"))
    return subprocess.run([sys.executable, "-m", "fluxhook.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def running_job(api: Api, prompt: str) -> str:
    """A job of the tenant's that BFL has and keeps running until the row ends it (``finish``): its id."""
    job_id = api.submit(f"[pending] {prompt}").json()["id"]
    wait_job(api, job_id, lambda j: j["status"] in SENT, 15)
    return job_id


def row_cancel_others(p: Probe) -> Row:
    """20. X cancels V's running job: POST /v1/jobs/{id}/cancel, the dashboard's cancel form, `fluxhook cancel`."""
    x, v = p.tenant("x-cancel"), p.tenant("v-cancel")
    job_id = running_job(v, "V's job that X would cancel")
    base = p.stack.base_url
    api = x.post(f"/v1/jobs/{job_id}/cancel").status_code
    # The dashboard: X's own session, its app key refused at sign-in, and that session's CSRF token.
    session = local_session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(base + "/signin", timeout=10).text)
    csrf = token.group(1) if token else ""
    signin = session.post(base + "/signin", data={"csrf_token": csrf, "token": x.token}, allow_redirects=False,
                          timeout=10).status_code
    form = session.post(base + f"/jobs/{job_id}/cancel", data={"csrf_token": csrf}, allow_redirects=False,
                        timeout=10).status_code
    bearer = local_session().post(base + f"/jobs/{job_id}/cancel", data={"csrf_token": csrf}, allow_redirects=False,
                                  headers={"Authorization": f"Bearer {x.token}"}, timeout=10).status_code
    command = cli("cancel", "--url", base, "--token", x.token, job_id)
    said = (command.stdout + command.stderr).strip().splitlines()
    during = v.job(job_id)
    finish(p, v, job_id)
    final = v.job(job_id)
    holds = (api == 404 and signin == 401 and form in (401, 403) and bearer in (401, 403) and command.returncode != 0
             and during.get("status") == "submitted" and final.get("status") == "stored")
    return Row("cancel V's running job: X's API call, dashboard form (X's session+CSRF), `fluxhook cancel`",
               f"API {api}, sign-in {signin}, form {form}, form+bearer {bearer}, CLI exit {command.returncode} "
               f"({(said[-1] if said else '')[:40]})",
               f"V's job {during.get('status')} meanwhile, then {final.get('status')}", "4 tries", holds)


# Cancel-After values a hostile caller sends: overflow, negative, zero, out of range, spaced, other notations, other
# digits (Arabic-Indic, fullwidth: sent as their UTF-8 bytes), a control character, and a huge one.
BAD_CANCEL_AFTER = ("99999999999999999999999h", "99999h99999999m999999999s", "-5m", "0s", "4s", "24h1s", "5 m", "1e3s",
                    "0x10s", "5m30", "٣٠s", "５m", "5m\x01", "5m" * 3000)


def row_cancel_after(p: Probe) -> Row:
    """21. X's hostile Cancel-After values on both doors: each 400, nothing created, nothing sent or reserved."""
    x = p.tenant("x-deadline", daily_credits=6)
    body = ('{"model": "flux-2-pro", "input": {"prompt": "X\'s deadline", "width": 1000, "height": 1000}}').encode()
    drop_in = b'{"prompt": "X\'s deadline", "width": 1000, "height": 1000}'
    sent_before = p.bfl.submitted()
    statuses = []
    for value in BAD_CANCEL_AFTER:
        for path, data in (("/v1/jobs", body), ("/v1/flux-2-pro", drop_in)):
            statuses.append(raw_request(p.stack.base_url, [f"POST {path} HTTP/1.1", f"Authorization: Bearer {x.token}",
                                                           "Content-Type: application/json",
                                                           f"Cancel-After: {value}"], data)[0])
    repeated = [raw_request(p.stack.base_url, [f"POST {path} HTTP/1.1", f"Authorization: Bearer {x.token}",
                                               "Content-Type: application/json", "Cancel-After: 5m",
                                               "Cancel-After: -1s"], data)[0]
                for path, data in (("/v1/jobs", body), ("/v1/flux-2-pro", drop_in))]
    made = len(x.get("/v1/jobs", params={"limit": 100}).json()["jobs"])
    spent = p.spent_today(x)
    sent = p.bfl.submitted() - sent_before
    after = x.submit("X's job after its refused ones").status_code  # its day was not reserved by the refusals
    # The huge value is refused by the web's header limit before fluxhook reads it: 400 too (or 431).
    holds = (set(statuses[:-2]) == {400} and set(statuses[-2:]) <= {400, 431} and set(repeated) == {400}
             and made == 0 and spent == 0 and sent == 0 and after == 202)
    return Row(f"Cancel-After: {len(BAD_CANCEL_AFTER)} hostile values ×2 doors, and the header twice",
               f"{codes(statuses)}, repeated {codes(repeated)}", "-",
               f"jobs made {made}, BFL tasks {sent}, X spent {spent:g}; X's next job {after}", holds)


def row_deadline_beside(p: Probe) -> Row:
    """22. X's 5 s deadline on a job beside V's with the same body and Idempotency-Key: only X's ends."""
    x, v = p.tenant("x-beside"), p.tenant("v-beside")
    body = {"model": "flux-2-pro", "input": {"prompt": "[pending] the same body", **BOUNDABLE}}
    key = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
    x_job = x.post("/v1/jobs", body, headers={**key, "Cancel-After": "5s"}).json()
    v_job = v.post("/v1/jobs", body, headers=key).json()
    x_end, took = wait_job(x, x_job["id"], lambda j: j["status"] in TERMINAL, 15)
    v_then = v.job(v_job["id"])
    finish(p, v, v_job["id"])
    v_end = v.job(v_job["id"])
    holds = (x_end.get("status") == "canceled" and v_job.get("id") != x_job.get("id") and v_then.get("deadline") is None
             and v_then.get("status") == "submitted" and v_end.get("status") == "stored")
    return Row("X's Cancel-After 5s beside V's job (same body, same Idempotency-Key)",
               f"X's job {x_end.get('status')} after {took:.1f} s",
               f"V's job {v_then.get('status')}, deadline {v_then.get('deadline')}, then {v_end.get('status')}",
               f"two jobs: {v_job.get('id') != x_job.get('id')}", holds)


# X's cycles of submit, wait for `submitted`, cancel; each task would run 90 s at BFL.
CHURN_CYCLES = 26
CHURN_TASK = "[seconds-90]"
# V's job reaches BFL within this long (BFL's answer, a second, included).
CHURN_V_WAIT = 2.0


def _most_at_once(tasks: list[dict]) -> int:
    """The most of ``tasks`` that BFL ran at one moment, from each one's start and end."""
    now = time.time()
    spans = [(task["created_at"], task["completed_at"] or now) for task in tasks]
    return max((sum(1 for start, end in spans if start <= at < end) for at, _ in spans), default=0)


def _sent_or_held(job: dict) -> bool:
    return job["status"] in SENT or (job.get("waiting") or {}).get("reason") == "key_max_active"


def row_cancel_churn(p: Probe) -> Row:
    """30. X (max_active 1) 26 times submits a 90-s task, waits for `submitted` and cancels it; then V submits a job."""
    x, v = p.tenant("x-churn", max_active=1), p.tenant("v-churn")
    marker = f"x-churn-{uuid.uuid4().hex[:8]}"
    held = 0
    for n in range(CHURN_CYCLES):
        job_id = x.submit(f"{CHURN_TASK} {marker} {n}").json()["id"]
        # Until BFL has it, or fluxhook says it waits for X's max_active (X's slot is its canceled task's): 3 s at most.
        job, _ = wait_job(x, job_id, _sent_or_held, 3)
        held += job.get("status") == "queued"
        x.post(f"/v1/jobs/{job_id}/cancel")
    tasks = p.bfl.tasks(marker)
    at_once = _most_at_once(tasks)
    shown = p.admin.get(f"/v1/keys/{x.key_id}").json()
    answer, v_job, took = submit_timed(v, "V's job beside X's cancel churn", 15)
    for task in tasks:  # BFL ends X's tasks now: none runs into the next row
        if task["completed_at"] is None:
            p.bfl.complete(task["id"])
    holds = (at_once <= 1 and answer.status_code == 202 and v_job.get("status") in SENT and took <= CHURN_V_WAIT
             and shown.get("active") == 1 and shown.get("canceled_running") == 1)
    return Row(f"cancel churn: X (max_active 1) ×{CHURN_CYCLES} a 90-s task, wait for `submitted`, cancel; then V",
               f"X's tasks at BFL at once: {at_once} (sent {len(tasks)}, {held} held back); X's key: active "
               f"{shown.get('active')}, canceled_running {shown.get('canceled_running')}",
               f"V's job {v_job.get('status') or answer.status_code} after {took:.1f} s",
               f"{CHURN_CYCLES} cycles", holds)


ROWS = (row_cancel_others, row_cancel_after, row_deadline_beside)
# Numbered after every other row (30), so the rows before keep their numbers.
LATER_ROWS = (row_cancel_churn,)
