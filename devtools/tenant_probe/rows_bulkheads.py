"""Rows 31-32: what X holds of V's by the worker and by reads (SPEC §7 "Bulkheads", §10): X's receiver trickling its
answers to X's notifications, and X flooding searches."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import Api, Probe, Row, codes, finish, remove_all, settle
from .rows_notify import FLOOD_ALLOWANCE, arrived, delay_of, ended, notified

TRICKLED = 60  # X's cheap notifications (jobs canceled while they wait for X's one slot) to its trickling receiver
READS = 60  # V's reads of its job, timed, alone and while X searches
SEARCHERS = 4  # X's threads searching at once
READ_RATIO = 1.5  # how much X's searches may raise V's read p50 (SPEC §10)


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


def _read_p50(v: Api, job_id: str) -> float:
    took = []
    for _ in range(READS):
        started = time.perf_counter()
        v.get(f"/v1/jobs/{job_id}")
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


def row_search_flood(p: Probe) -> Row:
    """32. X floods searches (q, limit=100, honouring Retry-After): V's GET /v1/jobs/{id} p50, X's 429s."""
    x, v = p.tenant("x-search-flood"), p.tenant("v-search-flood")
    v_job = v.submit("V's job, read while X searches").json()["id"]
    alone = _read_p50(v, v_job)
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
    during = _read_p50(v, v_job)
    stop.set()
    for searcher in searchers:
        searcher.join(timeout=10)
    remove_all(v, [v_job])
    limited = answers.count(429)
    holds = limited > 0 and all(waits) and during <= READ_RATIO * alone + 1.0
    return Row(f"search flood: {SEARCHERS} X threads searching q at limit=100",
               f"{codes(answers)}; every 429 with Retry-After: {all(waits)}",
               f"V's GET /v1/jobs/{{id}} p50 {during:.1f} ms", f"alone {alone:.1f} ms; limit {READ_RATIO:g}x", holds)


ROWS = (row_trickling_receiver, row_search_flood)
