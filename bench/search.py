"""Benchmark: ``GET /v1/jobs?q=`` (the prompt search over the caller's newest 10,000 jobs) beside the unfiltered
list, over HTTP against the Procfile's web (gunicorn), in the same run.

    .venv/bin/python -m bench.search [--jobs 10000] [--requests 200]

A fresh stack (Redis, the simulator answering submissions after about a second, the web). A few jobs go through
``POST /v1/jobs`` as an app would send them; the rest of ``--jobs`` are written through the job store the way
the lifecycle leaves a stored job (model, account, app key, prompt of 5 to 60 words, image, cost), half of them an
app key's. Then the lists are asked in turn, request by request, ``--requests`` times each: the unfiltered first
page (the baseline), a search that matches nothing, each time a text not searched before (it reads all 10,000
prompts: the worst case), the same search made again (an open list's refresh: it reads only the jobs made since,
store/search_matches.py), a search for a common word, a search with a status and a model, and an app key's search
of its own. Each web process keeps the prompts it has searched (store/prompt_cache.py), so these are searches after
a process's first; the first (every prompt of the window read from Redis) is timed apart, through the store in this
process with a fresh cache each time, the web's figure without its HTTP. The app key's reads are not limited here
(READS_PER_MINUTE set out of the way): this times a search, not the limit.
Target (docs/api.md, issue 52): p95 ≤ 100 ms for the search at 10,000 jobs.
Not part of the test suite; it prints a table and changes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import time

import requests

from bench.common import BenchStack, Row, Section, fmt, in_turn, log, percentile, print_report
from fluxhook.core.config import Config
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.job_filters import JobFilter
from fluxhook.services import build_services

TARGET_P95_MS = 100.0
WORDS = ("a red fox in snow lighthouse at dusk over a stormy sea portrait of an old sailor with a pipe neon city "
         "street in the rain mountain lake at dawn cinematic wide shot watercolor oil painting macro photo of a "
         "dew drop on a leaf isometric game art of a tiny bakery golden hour soft light 35mm film grain").split()
ANSWERED_AFTER = 1.0


def prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 60)))


def write_jobs(stack: BenchStack, count: int, key_id: str) -> None:
    """``count`` stored jobs through the job store, as the lifecycle leaves them, over the last 30 days."""
    store = build_services(Config.from_env(stack.env)).jobs
    rng = random.Random(52)
    now = time.time()
    start = now - 30 * 86400
    for n in range(count):
        made = start + (now - 60 - start) * n / count
        job = Job(id=new_job_id(made), status="stored", model=rng.choice(("flux-2-pro", "flux-2-max", "flux-dev")),
                  bfl_id=f"bench-{n:06d}-{rng.getrandbits(40):010x}", bfl_status="Ready", source="webhook",
                  created_at=made, updated_at=made + 9, completed_at=made + 9, submitted_at=made + 1,
                  finished_at=made + 8, account="default", key_id=key_id if n % 2 else None, prompt=prompt(rng),
                  image={"url": "", "content_type": "image/jpeg", "size": 180_000 + n, "sha256": f"{n:064x}",
                         "width": 1024, "height": 768},
                  cost_credits=4.5, cost_output_mp=0.79, storage_key=f"images/{n:06d}.jpg", webhooks=1)
        store.create(job)


def cold_searches(stack: BenchStack, count: int) -> list[float]:
    """Milliseconds of ``count`` searches that match nothing, each by a new job store (its prompt cache empty)."""
    config = Config.from_env(stack.env)
    found = []
    for _ in range(count):
        store = build_services(config).jobs
        store.list(limit=1)  # its connection opened, as a web process's is
        started = time.perf_counter()
        store.list(JobFilter(text="zebra crossing"), 20)
        found.append((time.perf_counter() - started) * 1000)
    return found


def timed(session: requests.Session, url: str, params: dict, n: int = 0) -> float:
    """Milliseconds of one list request; a ``{n}`` in a value is the request's number (a text not searched before)."""
    params = {name: value.format(n=n) if isinstance(value, str) else value for name, value in params.items()}
    started = time.perf_counter()
    response = session.get(url, params=params, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET /v1/jobs {params} answered {response.status_code}: {response.text[:200]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with BenchStack("search", log_level="WARNING", READS_PER_MINUTE="1000000").start(workers=1) as stack:
        stack.sim_settings(submit_delay=ANSWERED_AFTER)
        admin = stack.api_session()
        created = admin.post(stack.base_url + "/v1/keys", json={"name": "bench-search"}).json()
        app = requests.Session()
        app.headers["Authorization"] = f"Bearer {created['key']}"
        log(f"writing {args.jobs - 10:,} stored jobs through the store")
        write_jobs(stack, args.jobs - 10, created["id"])
        log("submitting 10 through POST /v1/jobs (the simulator answers after ~1 s)")
        for n in range(10):
            body = {"model": "flux-2-pro", "input": {"prompt": f"[pending] a lighthouse keeper at night {n}"}}
            response = admin.post(stack.base_url + "/v1/jobs", json=body, timeout=30)
            if response.status_code != 202:
                raise SystemExit(f"POST /v1/jobs answered {response.status_code}: {response.text[:200]}")
        url = stack.base_url + "/v1/jobs"
        cases = [
            ("unfiltered list (baseline)", admin, {"limit": 20}),
            ("q, no match: all 10,000 searched", admin, {"q": "zebra crossing {n}", "limit": 20}),
            ("q, no match, made again", admin, {"q": "zebra crossing", "limit": 20}),
            ("q, a common word", admin, {"q": "LIGHTHOUSE", "limit": 20}),
            ("q with status and model", admin, {"q": "stormy sea", "status": "stored", "model": "flux-dev", "limit": 20}),
            ("q as an app key, no match", app, {"q": "zebra crossing", "limit": 20}),
        ]
        for _, session, params in cases:  # warm: connections, scripts loaded, caches
            for n in range(5):
                timed(session, url, params, -1 - n)
        times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        log(f"{args.requests} requests of each, in turn")
        for n in range(args.requests):
            for name, session, params in in_turn(cases, n):
                times[name].append(timed(session, url, params, n))
        cold = cold_searches(stack, args.requests // 5)
        base = times[cases[0][0]]
        section = Section(f"GET /v1/jobs at {args.jobs:,} jobs (ms, p50 / p95)")
        for name, _, _ in cases:
            found = times[name]
            p95 = percentile(found, 95)
            searching = name.startswith("q")
            section.rows.append(Row(
                name, f"{fmt(percentile(found, 50))} / {fmt(p95)}",
                f"{fmt(percentile(base, 50))} / {fmt(percentile(base, 95))}" if searching else "",
                f"{p95 / percentile(base, 95):.1f}x" if searching else "",
                f"p95 ≤ {TARGET_P95_MS:.0f}" if searching else "", p95 <= TARGET_P95_MS if searching else None))
        section.rows.append(Row("q, no match, a process's first (cold)",
                                f"{fmt(percentile(cold, 50))} / {fmt(percentile(cold, 95))}", "", "",
                                f"p95 ≤ {TARGET_P95_MS:.0f}", percentile(cold, 95) <= TARGET_P95_MS))
        section.notes.append(f"{args.jobs:,} jobs ({args.jobs - 10:,} written through the store, 10 through the API), "
                             "half an app key's; requests one at a time, the cases in turn; baseline: the unfiltered "
                             "first page in the same run")
        print_report([section])


if __name__ == "__main__":
    main()
