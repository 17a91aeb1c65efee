"""Benchmark: what authenticating with an app key costs beside an admin token, on one web app.

    .venv/bin/python -m bench.app_keys [--requests 1500] [--rounds 2]

A web app (threaded werkzeug, in this process) on a fresh redis-server; one job tracked by an app
key; then ``GET /v1/jobs/{id}`` sent one after the other, ``--requests`` times with the admin token
and as many with the app key, alternating for ``--rounds``. An app key costs one Redis read per web
process and half second (its record, cached), so its latency should match the admin token's.
Not part of the test suite; it prints a table and changes nothing outside a temporary directory.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time

import requests
from werkzeug.serving import make_server

from devtools.processes import RedisServer, free_port
from fluxhook.core.config import Config
from receiver import create_app

ADMIN_TOKEN = "bench-admin-token-0123456789"


def timed(session: requests.Session, url: str, count: int) -> list[float]:
    """Milliseconds of ``count`` GETs of ``url`` one after the other, sorted."""
    found = []
    for _ in range(count):
        start = time.perf_counter()
        if session.get(url, timeout=10).status_code != 200:
            raise SystemExit(f"GET {url} failed")
        found.append((time.perf_counter() - start) * 1000)
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    redis_server = RedisServer().start()
    port = free_port()
    env = {"REDIS_URL": redis_server.url, "SECRET_KEY": "bench-secret-key-0123456789abcdef", "API_TOKENS": ADMIN_TOKEN,
           "PORT": str(port), "BFL_API_KEY": "unused", "BFL_API_BASE": "http://127.0.0.1:9",
           "API_HOST_ALLOWLIST": "127.0.0.1:9", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           "STORAGE_URL": f"file://{tempfile.mkdtemp(prefix='fluxhook-bench-keys-')}"}
    server = make_server("127.0.0.1", port, create_app(Config.from_env(env)), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{port}"
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        app = requests.Session()
        # The key's reads out of READS_PER_MINUTE's way: this times a read, not the limit.
        made = admin.post(base + "/v1/keys", json={"name": "bench", "reads_per_minute": 1_000_000})
        app.headers["Authorization"] = "Bearer " + made.json()["key"]
        job = app.post(base + "/v1/jobs/track", json={"bfl_id": "bench-app-keys"}).json()["id"]
        url = f"{base}/v1/jobs/{job}"
        print(f"{'round':>5}  {'token':<12} {'p50 ms':>8} {'p99 ms':>8}")
        for number in range(args.rounds):
            for name, session in (("admin token", admin), ("app key", app)):
                times = timed(session, url, args.requests)
                print(f"{number:>5}  {name:<12} {statistics.median(times):8.2f} {times[int(0.99 * len(times))]:8.2f}")
    finally:
        server.shutdown()
        redis_server.stop()


if __name__ == "__main__":
    main()
