"""Benchmark of the core loop on this machine: callback acknowledgement and callback → stored.

Runs the Procfile's web and worker against an embedded Redis and the BFL simulator, sends
signed Ready callbacks itself (so it times exactly fluxhook's side), and prints figures.

    .venv/bin/python -m bench.core_loop [--jobs 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import redis
import requests

from devtools.processes import wait_until
from devtools.stack import SIMULATOR_KEY, Stack
from fluxhook.core import signing
from fluxhook.store.keys import KEYS


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="fluxhook-bench-"))
    # Every task stays Pending until the bench completes it: fluxhook's BFL slots must not make one wait.
    stack = Stack(env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", "PORT": "8765",
                       "BFL_MAX_ACTIVE": str(args.jobs + 1)}, var_dir=var_dir)
    stack.prepare()
    stack.env["PUBLIC_BASE_URL"] = stack.base_url
    stack.start()
    try:
        run(stack, args.jobs)
    finally:
        stack.stop()


def run(stack: Stack, count: int) -> None:
    env = stack.env
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {env['API_TOKENS'].split(',')[0]}"
    sim = requests.Session()
    sim.headers["x-key"] = SIMULATOR_KEY
    db = redis.Redis.from_url(env["REDIS_URL"])

    # Tasks stay Pending until the bench completes them: lift the simulator's 24-in-flight cap.
    requests.post(f"{env['BFL_API_BASE']}/_sim/settings", json={"max_active": count + 1}, timeout=10)
    submit_ms, jobs = [], []
    for n in range(count):
        started = time.perf_counter()
        response = api.post(stack.base_url + "/v1/jobs", timeout=10,
                            json={"model": "flux-2-pro", "input": {"prompt": f"[pending] [drop] bench {n}"}})
        submit_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202, response.text
        jobs.append(response.json())
    for job in jobs:
        sim.post(f"{env['BFL_API_BASE']}/_sim/tasks/{job['bfl_id']}/complete", json={"outcome": "ready"}, timeout=10)

    ack_ms, sent_at = [], {}
    for job in jobs:
        sample = sim.get(f"{env['BFL_API_BASE']}/v1/get_result", params={"id": job["bfl_id"]}, timeout=10).json()
        assert "result" in sample, sample
        body = json.dumps({"id": job["bfl_id"], "status": "Ready", "result": {"sample": sample["result"]["sample"]}})
        headers = {"Content-Type": "application/json",
                   "X-Webhook-Secret": signing.job_webhook_secret(env["SECRET_KEY"], job["id"])}
        url = signing.job_webhook_url(stack.base_url, env["SECRET_KEY"], job["id"], job["model"])
        sent_at[job["id"]] = time.time()
        started = time.perf_counter()
        response = requests.post(url, data=body, headers=headers, timeout=10)
        ack_ms.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        # One at a time on an idle system: what "stored within a second" is about.
        wait_until(lambda job=job: db.hget(KEYS.job(job['id']), "status") in (b"stored", b"failed", b"expired"),
                   timeout=30, interval=0.002)

    to_stored = []
    for job in jobs:
        record = db.hgetall(KEYS.job(job['id']))
        assert record[b"status"] == b"stored", record
        to_stored.append((float(record[b"completed_at"]) - sent_at[job["id"]]) * 1000)

    print(f"core loop, {count} jobs, 1 web (the Procfile's gunicorn), 1 RQ worker, embedded Redis, simulator")
    print(f"{'figure':44} {'p50':>8} {'p95':>8} {'max':>8}")
    for name, values in (("POST /v1/jobs (incl. BFL submit), ms", submit_ms),
                         ("callback acknowledged (HTTP round trip), ms", ack_ms),
                         ("callback sent -> job stored, ms", to_stored)):
        print(f"{name:44} {statistics.median(values):8.1f} {percentile(values, 95):8.1f} {max(values):8.1f}")


if __name__ == "__main__":
    main()
