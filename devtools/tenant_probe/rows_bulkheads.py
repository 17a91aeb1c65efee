"""Rows 31-33: what X holds of V's by the worker and by reads (docs/operating.md "Bulkheads", docs/keys.md): X's
receiver trickling its answers to X's notifications, and X flooding searches; and what of V's reaches the operator's
trace collector (docs/operating.md "Traces"), a system more people can read than the service."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from .harness import TERMINAL, Api, Probe, Row, codes, finish, remove_all, settle, wait_job
from .rows_notify import FLOOD_ALLOWANCE, arrived, delay_of, ended, notified
from .rows_streams import read_ms

TRICKLED = 60  # X's cheap notifications (jobs canceled while they wait for X's one slot) to its trickling receiver
READS = 60  # V's reads of its job, timed, alone and while X searches
SEARCHERS = 4  # X's threads searching at once
READ_RATIO = 1.5  # how much X's searches may raise V's read p50


def _timed_end(api: Api, prompt: str) -> tuple[str, float]:
    started = time.monotonic()
    job_id = ended(api, prompt)
    return job_id, time.monotonic() - started


def row_trickling_receiver(p: Probe) -> Row:
    """31. X's receiver trickles: it answers a byte every 4 s to X's 60 notifications; V's job and its notification."""
    x = p.tenant("x-trickle", notify_url=p.slow_receiver.url(), max_active=1)
    v, v_path = notified(p, "v-trickle")
    alone_job, alone_took = _timed_end(v, "V's job before X's receiver trickles")
    alone = arrived(p, v_path, alone_job)
    holder = x.submit("[pending] holds X's one slot").json()["id"]
    with ThreadPoolExecutor(8) as pool:
        made = [a.json()["id"] for a in pool.map(lambda n: x.submit(f"X waits {n}"), range(TRICKLED))
                if a.status_code == 202]
        canceled = list(pool.map(lambda job_id: x.post(f"/v1/jobs/{job_id}/cancel").status_code, made))
    settle(lambda: p.slow_receiver.open >= 2, 30)
    during_job, during_took = _timed_end(v, "V's job while X's receiver trickles")
    during = arrived(p, v_path, during_job)
    finish(p, x, holder)
    remove_all(x, [*made, holder])
    base, held = (delay_of(got[0]) if got else float("inf") for got in (alone, during))
    most = p.slow_receiver.most_open
    holds = (len(made) == TRICKLED and most <= 2 and during_took <= alone_took + FLOOD_ALLOWANCE
             and held <= base + FLOOD_ALLOWANCE)
    return Row(f"trickling receiver: {TRICKLED} X notifications to a receiver answering a byte every 4 s",
               f"cancels {codes(canceled)}; its receiver held {most} attempts at once (at most 2)",
               f"V's job ended in {during_took:.1f} s, notified {held:.2f} s after",
               f"without it {alone_took:.1f} s and {base:.2f} s; limit +{FLOOD_ALLOWANCE:g} s", holds)


def row_search_flood(p: Probe) -> Row:
    """32. X floods searches (q, limit=100, honouring Retry-After): V's GET /v1/jobs/{id} p50, X's 429s."""
    x, v = p.tenant("x-search-flood", reads_per_minute=None), p.tenant("v-search-flood")
    v_job = v.submit("V's job, read while X searches").json()["id"]
    alone = read_ms(v, v_job, READS)
    stop, answers, waits = threading.Event(), [], []

    def search() -> None:
        while not stop.is_set():
            answer = x.get("/v1/jobs", params={"q": "lighthouse at dusk over a quiet sea", "limit": 100})
            answers.append(answer.status_code)
            if answer.status_code == 429:
                waits.append(answer.headers.get("Retry-After"))
                stop.wait(min(float(answer.headers.get("Retry-After") or 1), 2.0))

    searchers = [threading.Thread(target=search, daemon=True) for _ in range(SEARCHERS)]
    for searcher in searchers:
        searcher.start()
    during = read_ms(v, v_job, READS)
    stop.set()
    for searcher in searchers:
        searcher.join(timeout=10)
    remove_all(v, [v_job])
    limited = answers.count(429)
    holds = limited > 0 and all(waits) and during <= READ_RATIO * alone + 1.0
    return Row(f"search flood: {SEARCHERS} X threads searching q at limit=100",
               f"{codes(answers)}; every 429 with Retry-After: {all(waits)}",
               f"V's GET /v1/jobs/{{id}} p50 {during:.1f} ms", f"alone {alone:.1f} ms; limit {READ_RATIO:g}x", holds)


def row_traces(p: Probe) -> Row:
    """33. V's secrets and words in traces: V's job (tokens in its notify_url), its signed image link, V's search."""
    mark = uuid.uuid4().hex[:8]
    path = p.receivers.path(f"v-traced-{mark}", 200)
    v = p.tenant("v-traced", notify_url=p.receivers.url(f"{path}?app_token=apptok{mark}"))
    job_id = v.submit(f"a cobalt heron {mark}prompt").json()["id"]
    job, _ = wait_job(v, job_id, lambda j: j["status"] in TERMINAL, 30)
    link = (job.get("image") or {}).get("url") or ""
    read = v.call("GET", link.removeprefix(v.base), headers={"Authorization": ""}).status_code if link else 0
    searched = v.get("/v1/jobs", params={"q": f"{mark}search"}).status_code
    secrets = {"V's key": v.token, "the link's token": link.partition("token=")[2].split("&")[0] or "-",
               "notify_url's token": f"apptok{mark}", "the prompt": f"{mark}prompt", "the search": f"{mark}search"}
    # Until the web's and the worker's exports of it all came (their batches go every 0.2 s).
    exported = settle(lambda: (lambda e: e if b"GET /v1/jobs" in e and b"fluxhook.notify" in e else None)(
        b"".join(p.exports)), 15) or b"".join(p.exports)
    leaked = sorted(what for what, word in secrets.items() if word.encode() in exported)
    holds = read == 200 and searched == 200 and job_id.encode() in exported and not leaked
    return Row("traces: V's job, its signed image link, V's search, read at the operator's collector",
               f"{len(exported):,} bytes of spans; V's job id in them: {job_id.encode() in exported}",
               f"V's link {read}, search {searched}", f"leaked: {', '.join(leaked) or 'none'}", holds)


ROWS = (row_trickling_receiver, row_search_flood, row_traces)
