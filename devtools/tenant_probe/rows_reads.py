"""Rows 26-29: what X can make of V's jobs by reading (docs/api.md "Live", "Search", docs/bfl-compatible.md): watching
V's job to make the shared BFL account poll it, searching for V's jobs and prompts, hostile names echoed in
``unknown_field``, and bodies BFL's schema refuses spending anyone's limits."""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import quote

from .harness import SENT, Api, Probe, Row, codes, finish, settle, wait_job
from .rows_cancel import running_job
from .sse import Collector, raw_request

WATCH_WINDOW = 10.0  # seconds X watches V's job, then V does
# Polls of an unwatched running job in WATCH_WINDOW: one every 8-12 s (10 s ±20 %), so at most 2; watched, every 1.5 s.
UNWATCHED_POLLS, WATCHED_POLLS = 2, 4


def unknown_task(api: Api, task_id: str) -> int:
    """The drop-in's get_result of the id, as BFL answers an id it does not know (200 ``Task not found``) counted as
    404, any other answer as its status."""
    answer = api.get("/v1/get_result", params={"id": task_id})
    return 404 if answer.status_code == 200 and answer.json().get("status") == "Task not found" else answer.status_code


def row_watch_others(p: Probe) -> Row:
    """26. X watches V's running job (get_result, Prefer: wait, its stream): BFL polls V's task no faster."""
    x, v = p.tenant("x-watch"), p.tenant("v-watch")
    job_id = running_job(v, "V's job X would watch")
    task = v.job(job_id).get("bfl_id") or ""
    before = p.bfl.polls(task)
    answers: list[int] = []
    ends = time.monotonic() + WATCH_WINDOW
    while time.monotonic() < ends:
        answers += [unknown_task(x, job_id), unknown_task(x, task),
                    x.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=2"}).status_code,
                    Collector(x, f"/v1/jobs/{job_id}/events").status]
        time.sleep(0.3)
    by_x = p.bfl.polls(task) - before
    # The control: V's own get_result makes its job watched, and BFL is polled within seconds.
    before = p.bfl.polls(task)
    ends = time.monotonic() + WATCH_WINDOW
    while time.monotonic() < ends:
        v.get("/v1/get_result", params={"id": job_id})
        time.sleep(1)
    by_v = p.bfl.polls(task) - before
    finish(p, v, job_id)
    holds = set(answers) == {404} and by_x <= UNWATCHED_POLLS and by_v >= WATCHED_POLLS
    # get_result's 404s are BFL's 200 "Task not found".
    return Row(f"watching: X's get_result (job and BFL ids), Prefer: wait, stream on V's job for {WATCH_WINDOW:g} s",
               codes(answers), f"BFL polls of V's task: {by_x} while X watched",
               f"{by_v} in {WATCH_WINDOW:g} s of V's own get_result (unwatched ≤{UNWATCHED_POLLS})", holds)


def row_search_others(p: Probe) -> Row:
    """27. X searches for V's jobs: q (case folding, regex-ish, 200 chars), key_id, account, from/to, cursor."""
    x, v = p.tenant("x-search"), p.tenant("v-search")
    marker = uuid.uuid4().hex[:10]
    v_job = v.submit(f"Lighthouse STRASSE {marker} V-private").json()["id"]
    x_job = x.submit(f"lighthouse {marker} X-own").json()["id"]
    wait_job(v, v_job, lambda j: j["status"] in SENT, 15)
    account = v.job(v_job).get("account") or "default"
    wide = {"from": "2000-01-01", "to": "2100-01-01"}
    asks = [{"q": marker}, {"q": marker.upper()}, {"q": "lighthouse"}, {"q": "straße"}, {"q": "ſtrasse"},
            {"q": "STRAẞE"}, {"q": ".*"}, {"q": "%"}, {"q": "*"}, {"q": "V-private"}, {"q": "v-PRIVATE"},
            {"q": "a" * 200}, {"q": "a" * 201}, {"q": "a" * 10_000}, {"key_id": v.key_id}, {"key_id": v.key_id, "q": marker},
            {"account": account}, {"account": account, "q": marker}, wide, {**wide, "key_id": v.key_id},
            {"cursor": v_job}, {"cursor": "job_" + "f" * 26}, {"model": "flux-2-pro", "q": "V-private"}]
    answers = [x.get("/v1/jobs", params=ask) for ask in asks]
    leaked = [ask for ask, a in zip(asks, answers, strict=True) if v_job in a.text or "V-private" in a.text]
    own = x_job in answers[0].text
    control = v.get("/v1/jobs", params={"q": "ſtrasse"}).text
    holds = (not leaked and own and v_job in control and all(a.status_code in (200, 400, 414) for a in answers))
    return Row(f"search: {len(asks)} of X's filters (q folding/regex/huge, key_id=V, account, from/to, cursor)",
               f"{codes([a.status_code for a in answers])}; answers naming V's job: {len(leaked)}",
               f"V's own q=ſtrasse finds it: {v_job in control}", f"X's own job found: {own}", holds)


# Hostile names for unknown_field: long, with terminal escapes, CRLF, markup, a right-to-left override, NUL.
HOSTILE_NAMES = ("\x1b[2J\x1b[31m" + "A" * 3000, "x\r\nSet-Cookie: session=1", "<script>alert(1)</script>",
                 "\u202egnp.exe", "nul\x00byte", "\x7f\x85\x9b")
MESSAGE_CAP = 1000  # characters an unknown_field message may run to, whatever was sent


def unsafe(text: str) -> bool:
    """Whether a message holds a control character or a bidirectional override (what a log or terminal obeys)."""
    return bool(re.search(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text))


def row_unknown_field_echo(p: Probe) -> Row:
    """28. X's hostile field and parameter names: unknown_field names them length-capped, with no control chars."""
    x = p.tenant("x-echo")
    answers = []
    for name in HOSTILE_NAMES:
        answers.append(x.get(f"/v1/jobs?{quote(name, safe='')}=1"))
    answers.append(x.post("/v1/jobs", {**{name: 1 for name in HOSTILE_NAMES}, "model": "flux-2-pro",
                                       "input": {"prompt": "x"}}))
    answers.append(x.post("/v1/jobs/track", {name * 2: 1 for name in HOSTILE_NAMES} | {"bfl_id": "t"}))
    bodies = [a.json() if a.headers.get("Content-Type", "").startswith("application/json") else {} for a in answers]
    messages = [(b.get("error") or {}).get("message", "") for b in bodies]
    codes_ = [(b.get("error") or {}).get("code") for b in bodies]
    longest = max(len(m) for m in messages)
    bad = sum(unsafe(m) for m in messages)
    # BFL's 422 for the drop-in's strict models names each refused field as pydantic does (loc): how much it echoes.
    strict = {name: 1 for name in HOSTILE_NAMES} | {"prompt": "x"}
    status, body = raw_request(p.stack.base_url, ["POST /v1/flux-3-image HTTP/1.1", f"Authorization: Bearer {x.token}",
                                                  "Content-Type: application/json"], json.dumps(strict).encode())
    holds = (set(a.status_code for a in answers) == {400} and set(codes_) == {"unknown_field"} and longest <= MESSAGE_CAP
             and bad == 0)
    return Row(f"unknown_field echo: {len(HOSTILE_NAMES)} hostile names (3,000 chars, ESC, CRLF, <script>, RLO, NUL)",
               f"{codes([a.status_code for a in answers])} {', '.join(dict.fromkeys(map(str, codes_)))}",
               f"longest message {longest} chars, unsafe {bad}",
               f"drop-in strict model: {status}, {len(body):,} B echoed back", holds)


def row_refused_bodies(p: Probe) -> Row:
    """29. X sends bodies BFL's schema refuses (reusing V's Idempotency-Key): nothing spent, reserved or replayed."""
    x, v = p.tenant("x-refused", daily_credits=6, max_active=1), p.tenant("v-refused", daily_credits=6)
    key = {"Idempotency-Key": f"probe-{uuid.uuid4()}"}
    v_body = {"prompt": "V's drop-in job", "width": 1024, "height": 1024}
    v_first = v.post("/v1/flux-2-pro", v_body, headers=key)
    sent_before, v_spent = p.bfl.submitted(), settle(lambda: p.spent_today(v), 10)
    bad = [{"prompt": "x", "width": "big"}, {"prompt": "x", "width": 32}, {"width": 1024},
           {"prompt": "x", "output_format": "gif"}, {"prompt": "x", "safety_tolerance": -1}]
    answers = []
    for body in bad * 3:
        answers.append(x.post("/v1/flux-2-pro", body, headers=key).status_code)
        answers.append(x.post("/v1/jobs", {"model": "flux-2-pro", "input": body}, headers=key).status_code)
    made = len(x.get("/v1/jobs").json()["jobs"])
    x_spent, sent = p.spent_today(x), p.bfl.submitted() - sent_before
    x_next = x.post("/v1/flux-2-pro", v_body)  # its max_active 1 and 6 credits were not taken by the refusals
    v_again = v.post("/v1/flux-2-pro", v_body, headers=key)
    replayed = v_again.headers.get("Idempotent-Replayed")
    same = v_again.status_code == 200 and v_again.json().get("id") == v_first.json().get("id")
    holds = (set(answers) <= {400, 422} and 422 in answers and made == 0 and x_spent == 0 and sent == 0
             and x_next.status_code == 200 and same and p.spent_today(v) == v_spent)
    return Row(f"refused bodies: {len(answers)} BFL would refuse, with V's Idempotency-Key, on both doors",
               f"{codes(answers)}; jobs {made}, spent {x_spent:g}, BFL tasks {sent}; X's next {x_next.status_code}",
               f"V's retry with its key: same job {same} (replayed {replayed}), spent {p.spent_today(v):g}",
               f"V spent {v_spent:g} before", holds)


ROWS = (row_watch_others, row_search_others, row_unknown_field_echo, row_refused_bodies)
