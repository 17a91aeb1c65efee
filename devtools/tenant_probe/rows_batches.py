"""Rows 34, 35 and 38: batches between tenants: X reaching V's batch by every door, X's batch far larger
than its daily_credits, and X's 10,000-item batches beside V's single jobs. Rows 36-37 (what X's batch asks for) are
``rows_batch_requests``'; what both use is here."""

from __future__ import annotations

import hashlib
import secrets
import statistics
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from fluxhook.store import scripts
from fluxhook.store.scripts import source

from .harness import (
    BFL_ANSWERS_AFTER,
    BOUNDABLE,
    SENT,
    TASK_SECONDS,
    TERMINAL,
    Api,
    Probe,
    Row,
    codes,
    local_session,
    settle,
    submit_timed,
    wait_job,
)
from .rows_cancel import _most_at_once
from .rows_streams import status_of
from .sse import raw_request

NDJSON = "application/x-ndjson"
# Crockford's base32, as a batch id's 26 characters are written (``fluxhook.core.batch``).
ID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------- what the batch rows share


def items(count: int, prompt: str, **fields: Any) -> list[dict]:
    """``count`` items of flux-2-pro at 1 MP (3 credits each), their prompts ``prompt`` and their index."""
    return [{"input": {"prompt": f"{prompt} {n}", **BOUNDABLE}, **fields} for n in range(count)]


def post_batch(api: Api, batch_items: list[dict], timeout: float = 30, **fields: Any) -> requests.Response:
    return api.post("/v1/batches", {"model": "flux-2-pro", "items": batch_items, **fields}, timeout=timeout)


def post_ndjson(api: Api, body: bytes, **params: Any) -> requests.Response:
    """A batch sent as NDJSON: ``body`` as it is, the model and ``params`` as query parameters."""
    return api.call("POST", "/v1/batches", params={"model": "flux-2-pro", **params}, data=body,
                    headers={"Content-Type": NDJSON}, timeout=60)


def batch_of(api: Api, batch_id: str) -> dict:
    answer = api.get(f"/v1/batches/{batch_id}")
    return answer.json() if answer.status_code == 200 else {}


def item_jobs(api: Api, batch_id: str, **params: Any) -> list[dict]:
    """The batch's items as ``GET /v1/jobs?batch_id=`` lists them (its first page of 100)."""
    answer = api.get("/v1/jobs", params={"batch_id": batch_id, "limit": 100, **params})
    return answer.json()["jobs"] if answer.status_code == 200 else []


def error_code(answer: requests.Response) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return (body.get("error") or {}).get("code") if isinstance(body, dict) else None


def made_by(api: Api) -> tuple[int, int]:
    """How many batches and jobs the tenant has (the first page of each, 100 at most)."""
    batches = api.get("/v1/batches", params={"limit": 100}).json()["batches"]
    return len(batches), len(api.get("/v1/jobs", params={"limit": 100}).json()["jobs"])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("inf")


def made_up_id() -> str:
    return "bat_" + "".join(secrets.choice(ID_CHARS) for _ in range(26))


# --------------------------------------------------------------------------- 34: reaching V's batch


def row_batch_reach(p: Probe) -> Row:
    """34. X reaches for V's batch: every batch route, its items' list, listings, guessed, malformed and dotted ids."""
    x, v = p.tenant("x-batch-reach"), p.tenant("v-batch-reach")
    marker = f"v-batch-secret-{secrets.token_hex(6)}"
    made = post_batch(v, items(3, f"[pending] {marker}"), metadata={"secret": marker})
    batch_id = made.json()["id"]
    settle(lambda: batch_of(v, batch_id).get("counts", {}).get("submitted") == 3, 20)
    v_items = item_jobs(v, batch_id)
    p.bfl.complete(v_items[0].get("bfl_id") or "")  # one stored: V's results and ZIP hold a file
    settle(lambda: batch_of(v, batch_id).get("counts", {}).get("stored") == 1, 20)
    own = post_batch(x, items(1, "X's own batch")).json().get("id")  # X's listing is not empty
    before = batch_of(v, batch_id)
    guessed, near = made_up_id(), batch_id[:-1] + ("0" if batch_id[-1] != "0" else "1")

    def answers(target: str) -> list[tuple[int, str | None, str]]:
        """X's answers on each route for ``target``: status, error code, message with the id taken out."""
        got = [x.get(f"/v1/batches/{target}"), x.get(f"/v1/batches/{target}/results"),
               x.get(f"/v1/batches/{target}/results", params={"format": "zip"}), x.post(f"/v1/batches/{target}/cancel")]
        return [(a.status_code, error_code(a), a.text.replace(target[:40], "ID")) for a in got]

    by_v, by_made_up = answers(batch_id), answers(guessed)
    streams = [status_of(x, f"/v1/batches/{t}/events", h) for t in (batch_id, guessed, near)
               for h in ({}, {"Last-Event-ID": "0-000000000000"})]
    others = [answers(t) for t in (near, batch_id.lower(), "bat_", batch_id + "0", "bat_" + "0" * 26, "bat_*",
                                   batch_id[:20] + "*")]
    # Paths sent as written (no client folds ``..`` away): dot segments, encoded slashes, V's id after a dot.
    dotted = [raw_request(p.stack.base_url, [f"{method} {path} HTTP/1.1", f"Authorization: Bearer {x.token}"])
              for method, path in (("GET", "/v1/batches/../keys"), ("GET", f"/v1/batches/./{batch_id}"),
                                   ("GET", f"/v1/batches/{batch_id}/../{batch_id}"),
                                   ("GET", f"/v1/batches/{batch_id}%2Fresults"), ("GET", f"/v1/batches/..%2F{batch_id}"),
                                   ("POST", f"/v1/batches/{batch_id}%2Fcancel"), ("GET", f"/v1/jobs/../batches/{batch_id}"))]
    listed = [x.get("/v1/jobs", params={"batch_id": batch_id}), x.get("/v1/jobs", params={"batch_id": batch_id,
                                                                                         "key_id": v.key_id}),
              x.get("/v1/batches", params={"limit": 100}), x.get("/v1/batches", params={"cursor": batch_id})]
    item_reads = [x.get(f"/v1/jobs/{job['id']}").status_code for job in v_items]
    board = local_session()  # the dashboard's batch routes, X's key as a bearer and no session
    dash = [board.request(method, p.stack.base_url + path, headers={"Authorization": f"Bearer {x.token}"},
                          allow_redirects=False, timeout=10)
            for method, path in (("GET", f"/batches/{batch_id}"), ("GET", f"/batches/{batch_id}/results.jsonl"),
                                 ("GET", f"/batches/{batch_id}/results.zip"), ("GET", f"/live/batches/{batch_id}"),
                                 ("GET", f"/live/batches/{batch_id}/events"), ("POST", f"/batches/{batch_id}/cancel"))]
    after = batch_of(v, batch_id)
    # What X sent (V's batch id) comes back in a not-found message; V's metadata, items and key never should.
    texts = [a[2] for a in by_v] + [b.decode(errors="replace") for _, b in dotted] + [a.text for a in listed + dash]
    leaked = sum(any(s in text for s in (marker, v.key_id, *(job["id"] for job in v_items))) for text in texts)
    listed_ids = [b["id"] for b in listed[2].json().get("batches", []) + listed[3].json().get("batches", [])]
    empty = [a.json().get("jobs") == [] for a in listed[:2]]
    for job in v_items:  # BFL ends V's tasks: the batch ends stored, nothing held into the next row
        p.bfl.complete(job.get("bfl_id") or "")
    settle(lambda: batch_of(v, batch_id).get("status") == "ended", 20)
    same = {k: before.get(k) for k in ("status", "counts", "cost", "canceled_at")} == \
        {k: after.get(k) for k in ("status", "counts", "cost", "canceled_at")}
    statuses = [a[0] for a in by_v] + [a[0] for group in others for a in group] + [s for s, _ in dotted]
    refused_codes = {a[1] for a in by_v} | {a[1] for group in others for a in group}
    holds = (by_v == by_made_up and {a[0] for a in by_v} == {404} and refused_codes == {"not_found"}
             and set(streams) == {404} and set(statuses) == {404} and all(empty) and batch_id not in listed_ids
             and own in listed_ids and set(item_reads) == {404} and all(d.status_code not in range(200, 300)
                                                                         for d in dash)
             and leaked == 0 and same and after.get("status") == "running")
    return Row("V's batch by X: GET, results (jsonl, zip), events, cancel, ?batch_id=, listings, guessed/dotted ids",
               f"routes {codes(statuses)} ({', '.join(sorted(map(str, refused_codes)))}), same as a made-up id: "
               f"{by_v == by_made_up}; streams {codes(streams)}; dashboard {codes([d.status_code for d in dash])}; "
               f"?batch_id= empty {empty}",
               f"V's batch {after.get('status')}, counts and cost unchanged: {same}",
               f"{len(statuses) + len(streams) + len(listed) + len(item_reads) + len(dash)} requests, answers naming "
               f"V's batch, items or metadata: {leaked}", holds)


# --------------------------------------------------------------------------- 38: a flood of items


FLOOD_ITEMS = 10_000
FLOOD_BATCHES = 2  # X's batches, posted at once
FLOOD_MAX_ACTIVE = 2
# Each of X's items holds its slot 20 s at BFL: its slots turn over within the row, and the run's daily limit
# (DAILY_LIMIT, the account's: every row spends from it) pays for a few dozen of them, not hundreds.
FLOOD_TASK = "[seconds-20]"
V_JOBS = 5  # V's single jobs alone, and while X's batches run
V_JOBS_BESIDE = 4  # V's most while X's batches are made, and while they are canceled (a second apart)
READ_PAUSE = 0.02  # seconds between V's reads of its job
# Bounds on V beside X's batches, against V alone measured in the same row just before.
SUBMIT_ALLOWANCE = 1.0  # s: V's job to `submitted`, p50 and worst, beyond V alone's
READ_P50_RATIO = 1.5  # V's GET /v1/jobs/{id} p50 within 1.5x of V alone's (+1 ms), as row 32
READ_P99_CEILING = 100.0  # ms: its p99 within 3x of V alone's or 100 ms (make bench-hostile's target), the larger


class Reader:
    """A thread of V's reading V's job every READ_PAUSE s until stopped: each read's time and ms."""

    def __init__(self, v: Api, job_id: str):
        self.v, self.job_id, self.reads = v, job_id, []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopped.is_set():
            started = time.perf_counter()
            self.v.get(f"/v1/jobs/{self.job_id}")
            self.reads.append((time.monotonic(), (time.perf_counter() - started) * 1000))
            self.stopped.wait(READ_PAUSE)

    def between(self, start: float, end: float) -> list[float]:
        return [ms for at, ms in list(self.reads) if start <= at <= end]

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def v_jobs(v: Api, tag: str, count: int = V_JOBS, until: list[Future] = ()) -> list[float]:
    """V's jobs one after another: ``count``, or with ``until`` (X's requests) one a second while they are not answered,
    V_JOBS_BESIDE at most; each one's seconds from its request to `submitted` (inf for one never sent)."""
    took: list[float] = []
    while len(took) < count or (until and len(took) < V_JOBS_BESIDE and not all(f.done() for f in until)):
        if until and took:
            time.sleep(1.0)
        _, job, seconds = submit_timed(v, f"V's single job {tag} {len(took)}", 15)
        took.append(seconds if job.get("status") in SENT else float("inf"))
    return took


def row_batch_flood(p: Probe) -> Row:
    """38. X (max_active 2) posts two 10,000-item batches at once, then cancels them; V makes jobs and reads one."""
    x, v = p.tenant("x-batch-flood", max_active=FLOOD_MAX_ACTIVE), p.tenant("v-batch-flood")
    marker = f"x-flood-{uuid.uuid4().hex[:8]}"
    read_job = v.submit("V's job it reads").json()["id"]
    wait_job(v, read_job, lambda j: j["status"] in TERMINAL, 30)
    bodies = [{"model": "flux-2-pro", "items": items(FLOOD_ITEMS, f"{FLOOD_TASK} {marker} b{b}")}
              for b in range(FLOOD_BATCHES)]
    reader = Reader(v, read_job)
    marks = [time.monotonic()]
    took = {"alone": v_jobs(v, "alone")}
    marks.append(time.monotonic())
    p.redis.slowlog_reset()  # Redis's commands over 10 ms from here on (its default slowlog-log-slower-than)

    def timed(method: str, path: str, body: dict | None = None) -> tuple[requests.Response, float]:
        started = time.monotonic()
        answer = x.call(method, path, json=body, timeout=180)
        return answer, time.monotonic() - started

    with ThreadPoolExecutor(FLOOD_BATCHES) as pool:
        posting = [pool.submit(timed, "POST", "/v1/batches", body) for body in bodies]
        took["made"] = v_jobs(v, "as X's batches are made", 1, until=posting)
        answers = [f.result() for f in posting]
        marks.append(time.monotonic())
        made = [a.json()["id"] for a, _ in answers if a.status_code == 202]
        took["running"] = v_jobs(v, "beside X's batches")
        # At least one turnover of X's slots at BFL: the count covers slots handed on, not only the first fill.
        settle(lambda: len(p.bfl.tasks(marker)) > FLOOD_MAX_ACTIVE, 30, interval=0.5)
        tasks = p.bfl.tasks(marker)
        counts = [batch_of(x, b).get("counts", {}) for b in made]
        marks.append(time.monotonic())
        # X cancels them: the unsent items end aborted; the few sent go on to be stored, holding X's own
        # slots only, as a canceled task BFL still runs always did.
        cancel_asked = time.time()  # the simulator's clock: BFL should get none of X's items after this
        canceling = [pool.submit(timed, "POST", f"/v1/batches/{b}/cancel") for b in made]
        took["canceled"] = v_jobs(v, "as X's batches are canceled", 1, until=canceling)
        canceled = [f.result() for f in canceling]
        marks.append(time.monotonic())
    reader.stop()
    slow = p.redis.slowlog_get(128)
    # BFL notes a task when its answer's second starts: one sent just before the cancel was asked is noted within it.
    after_cancel = sum(task["created_at"] >= cancel_asked + BFL_ANSWERS_AFTER for task in p.bfl.tasks(marker))
    at_once = _most_at_once(tasks)
    windows = {name: reader.between(marks[n], marks[n + 1])
               for n, name in enumerate(("alone", "made", "running", "canceled"))}
    read = {name: (percentile(ms, 0.5), percentile(ms, 0.99), len(ms)) for name, ms in windows.items()}
    sub = {name: (statistics.median(t), max(t)) for name, t in took.items()}
    (a50, a99, _), (s50, s_worst) = read["alone"], sub["alone"]
    p99_limit = max(3 * a99, READ_P99_CEILING)
    over = [name for name in ("made", "running", "canceled")
            if not (sub[name][0] <= s50 + SUBMIT_ALLOWANCE and sub[name][1] <= s_worst + SUBMIT_ALLOWANCE
                    and read[name][0] <= READ_P50_RATIO * a50 + 1 and read[name][1] <= p99_limit)]
    holds = len(made) == FLOOD_BATCHES and at_once <= FLOOD_MAX_ACTIVE and not over
    shown = "; ".join(f"{name}: {sub[name][0]:.2f}/{sub[name][1]:.2f} s, reads {read[name][0]:.1f}/{read[name][1]:.1f} ms"
                      f" ({read[name][2]})" for name in ("made", "running", "canceled"))
    return Row(f"{FLOOD_BATCHES} × {FLOOD_ITEMS:,}-item batches of X's (max_active {FLOOD_MAX_ACTIVE}) beside V's jobs",
               f"{codes([a.status_code for a, _ in answers])} in {', '.join(f'{s:.1f}' for _, s in answers)} s; at BFL "
               f"at once {at_once} of {len(tasks)} sent; queued {sum(c.get('queued', 0) for c in counts):,}; cancels "
               f"{codes([a.status_code for a, _ in canceled])} in {', '.join(f'{s:.1f}' for _, s in canceled)} s, "
               f"items sent to BFL after the cancel was asked {after_cancel}; spent {p.spent_today(x):g} (V "
               f"{p.spent_today(v):g})",
               f"to submitted p50/worst, reads p50/p99 — {shown}" + (f"; over: {', '.join(over)}" if over else ""),
               f"alone: {s50:.2f}/{s_worst:.2f} s, reads {a50:.1f}/{a99:.1f} ms ({read['alone'][2]}); limits "
               f"+{SUBMIT_ALLOWANCE:g} s, {READ_P50_RATIO:g}x, p99 {p99_limit:.0f} ms; Redis over 10 ms: {len(slow)} "
               f"({slow_scripts(slow)})", holds)


def slow_scripts(entries: list[dict]) -> str:
    """Redis's SLOWLOG entries by what ran, the longest first: ``slots_dispatch ×3 ≤101 ms``. A script is named by
    its SHA (fluxhook's ``lua/`` files, each loaded alone), its arguments left out (they hold the items)."""
    names = {hashlib.sha1(source(path.stem).encode()).hexdigest(): path.stem
             for path in (Path(scripts.__file__).parent / "lua").glob("*.lua")}
    longest: dict[str, list[float]] = {}
    for entry in entries:
        command = entry.get("command") or b"-"
        words = (command.decode(errors="replace") if isinstance(command, bytes) else str(command)).split(" ")
        name = names.get(words[1], "a script") if words[0].upper() == "EVALSHA" and len(words) > 1 else words[0]
        longest.setdefault(name, []).append(entry["duration"] / 1000)
    ranked = sorted(longest.items(), key=lambda item: -max(item[1]))
    return ", ".join(f"{name} ×{len(ms)} ≤{max(ms):.0f} ms" for name, ms in ranked[:3]) or "none"


# --------------------------------------------------------------------------- 35: a batch past the day's credits


BUDGET = 10  # X's and V's daily_credits: three of X's items (3 credits each), and a fourth only past the limit
BUDGET_ITEMS = 200
PRICE = 3.0  # credits of one item (flux-2-pro at 1 MP)


def row_batch_budget(p: Probe) -> Row:
    """35. X (daily_credits 10) posts a 200-item batch: X's spend stops at the limit, its rest waits; V goes on."""
    x, v = p.tenant("x-batch-budget", daily_credits=BUDGET), p.tenant("v-batch-budget", daily_credits=BUDGET)
    marker = f"x-budget-{uuid.uuid4().hex[:8]}"
    made = post_batch(x, items(BUDGET_ITEMS, marker))
    batch_id = made.json().get("id", "")
    v_first = submit_timed(v, "V's job as X's batch spends", 15)

    def stopped() -> dict | None:
        batch = batch_of(x, batch_id)
        counts = batch.get("counts", {})
        ended = sum(counts.get(s, 0) for s in TERMINAL)
        return batch if ended >= 1 and ended + counts.get("queued", 0) == BUDGET_ITEMS else None

    settle(stopped, 40, interval=0.5)
    time.sleep(TASK_SECONDS + BFL_ANSWERS_AFTER)  # a task more, were one still to be sent, would be at BFL by now
    batch = batch_of(x, batch_id)
    waiting = item_jobs(x, batch_id, status="queued")
    reasons = {(job.get("waiting") or {}).get("reason") for job in waiting}
    v_more = [submit_timed(v, f"V's job {n} beside X's waiting batch", 15) for n in range(2)]
    v_jobs = [answer.json().get("id") for answer, _, _ in (v_first, *v_more) if answer.status_code == 202]
    v_stored = sum(wait_job(v, job_id, lambda j: j["status"] in TERMINAL, 30)[0].get("status") == "stored"
                   for job_id in v_jobs)
    spent, sent = p.spent_today(x), len(p.bfl.tasks(marker))
    canceled = x.post(f"/v1/batches/{batch_id}/cancel", timeout=60)
    shown = canceled.json() if canceled.status_code == 200 else {}
    spent_after = settle(lambda: p.spent_today(x), 5)
    v_took = [took for answer, job, took in (v_first, *v_more) if job.get("status") in SENT]
    counts = batch.get("counts", {})
    holds = (made.status_code == 202 and spent <= BUDGET + PRICE and sent * PRICE <= BUDGET + PRICE
             and counts.get("queued") == BUDGET_ITEMS - sent and reasons == {"key_daily_credits"}
             and len(v_took) == 3 and max(v_took) <= 3 + BFL_ANSWERS_AFTER and v_stored == 3
             and spent_after == spent and (shown.get("counts") or {}).get("aborted") == BUDGET_ITEMS - sent)
    return Row(f"a {BUDGET_ITEMS}-item batch of X's past its daily_credits {BUDGET}",
               f"{made.status_code}; sent {sent}, then {counts.get('queued')} queued ({', '.join(map(str, reasons))}); "
               f"cancel {canceled.status_code}: {(shown.get('counts') or {}).get('aborted')} aborted",
               f"V's 3 jobs submitted in {', '.join(f'{t:.1f}' for t in v_took)} s, stored {v_stored}",
               f"X spent {spent:g} of {BUDGET} (limit + one item {BUDGET + PRICE:g}), batch cost "
               f"{(batch.get('cost') or {}).get('credits')}, after its cancel {spent_after:g}", holds)


ROWS = (row_batch_reach, row_batch_budget)
# Numbered after the other batch rows (38): its spend and its long cancels come last.
LATER_ROWS = (row_batch_flood,)
