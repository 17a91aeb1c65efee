"""Benchmark: a CDN in front of fluxhook's images, with links stable for a window beside per-second links.

    .venv/bin/python -m bench.cdn [--minutes 10] [--every 10] [--images 25]

A catalog page of ``--images`` stored images (the simulator's photo-like 1024x1024 JPEGs) is rendered from a fresh
API read (``GET /v1/jobs``, one page of the key's jobs) every ``--every`` seconds for ``--minutes``; each image is
fetched through Debian's nginx with ``proxy_cache`` (devtools/nginx_cache.py, as docs/api.md sets up a CDN) at two
widths: the srcset link a browser picks for a 256-px slot on a screen of 1 and of 2 device pixels per CSS pixel
(256w and 512w), with Chromium's ``Accept`` (so ``format=auto`` is AVIF). Plain HTTP requests of those srcset links,
not a browser: a browser's own cache would hide repeat views from the CDN, and each view here stands for a new
visitor. Two stacks side by side over the same minutes, each with its own nginx: ``IMAGE_URL_WINDOW_SECONDS`` at its
default (3600) and at 1 (a new token every second, the behaviour before windows). Printed: the share of fetches the
cache answered (target at least 95 % over 10 minutes), the fetches the web answered with bytes (its own request log)
and how many times the web served each variant's bytes. Needs nginx (``sh devtools/nginx.sh``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import requests

from devtools.nginx_cache import BROWSER_ACCEPT, CachingProxy, nginx_binary

from .common import BenchStack, Row, Section, log, print_report

SHARE_TARGET = 0.95
SLOT = 256
DENSITIES = (1, 2)
SIZE = 1024


@dataclass
class Run:
    """One stack's figures."""

    window: int
    fetches: int = 0
    hits: int = 0
    views: int = 0
    windows_seen: set[int] = field(default_factory=set)
    served_by_web: int = 0
    per_variant: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _picked(srcset: str) -> list[str]:
    """The srcset links a browser picks for a SLOT-px slot at each of DENSITIES: the narrowest at least that wide."""
    entries = sorted((int(width[:-1]), url) for url, width in (entry.rsplit(" ", 1) for entry in srcset.split(", ")))
    return [next((url for width, url in entries if width >= SLOT * density), entries[-1][1]) for density in DENSITIES]


def _stored_page(stack: BenchStack, app: requests.Session, count: int) -> None:
    ids = []
    for n in range(count):
        body = {"model": "flux-2-pro", "input": {"prompt": f"catalog item {n}", "width": SIZE, "height": SIZE}}
        ids.append(app.post(stack.base_url + "/v1/jobs", json=body, timeout=30).json()["id"])
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        jobs = app.get(stack.base_url + "/v1/jobs", params={"limit": count}, timeout=30).json()["jobs"]
        if sum(job["status"] == "stored" for job in jobs) == count:
            return
        time.sleep(0.2)
    raise SystemExit(f"{count} jobs not stored within 300 s")


def _variant(url: str) -> tuple[str, str]:
    """A link's variant, its token aside: the job's path and its width."""
    parts = urlsplit(url)
    return parts.path, parse_qs(parts.query)["w"][0]


def run(window: int, images: int, minutes: float, every: float, start_at: threading.Barrier, run: Run) -> None:
    with BenchStack(f"cdn-{window}", log_level="INFO", IMAGE_URL_WINDOW_SECONDS=str(window),
                    IMAGE_URL_TTL_SECONDS="3600", READS_PER_MINUTE="100000").start(workers=1) as stack:
        admin = stack.api_session()
        key = admin.post(stack.base_url + "/v1/keys", json={"name": "bench-cdn"}, timeout=30).json()
        app = requests.Session()
        app.headers["Authorization"] = f"Bearer {key['key']}"
        _stored_page(stack, app, images)
        with CachingProxy(urlsplit(stack.base_url).netloc, stack.var_dir / "nginx") as cdn:
            browser = requests.Session()
            start_at.wait()
            started = time.monotonic()
            while time.monotonic() - started < minutes * 60:
                tick = time.monotonic()
                run.windows_seen.add(int(time.time()) // window)
                jobs = app.get(stack.base_url + "/v1/jobs", params={"limit": images}, timeout=30).json()["jobs"]
                for job in jobs:
                    for url in _picked(job["image"]["srcset"]):
                        parts = urlsplit(url)
                        answer = browser.get(f"{cdn.base_url}{parts.path}?{parts.query}",
                                             headers={"Accept": BROWSER_ACCEPT}, timeout=60)
                        if answer.status_code != 200:
                            run.errors.append(f"{answer.status_code} {answer.text[:100]}")
                        run.fetches += 1
                        run.hits += answer.headers.get("X-Cache-Status") == "HIT"
                run.views += 1
                time.sleep(max(0.0, every - (time.monotonic() - tick)))
            for line in cdn.log():
                if line["origin"] and "&w=" in line["uri"]:
                    run.per_variant[_variant(line["uri"])] += 1
        for text in (stack.var_dir / "web.log").read_text(errors="replace").splitlines():
            if text.startswith("{") and '"/v1/jobs/<job_id>/image"' in text:
                run.served_by_web += json.loads(text).get("status") == 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between two views of the page")
    parser.add_argument("--images", type=int, default=25)
    args = parser.parse_args()
    if nginx_binary() is None:
        raise SystemExit("no nginx: `sh devtools/nginx.sh` installs Debian's (root and apt-get)")
    runs = [Run(window=3600), Run(window=1)]
    start_at = threading.Barrier(len(runs))
    log(f"two stacks, {args.images} stored images each, then a view every {args.every:g} s for {args.minutes:g} min")
    threads = [threading.Thread(target=run, args=(r.window, args.images, args.minutes, args.every, start_at, r))
               for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stable, per_second = runs
    section = Section(f"A page of {args.images} images at {SLOT}w and {SLOT * 2}w, read afresh every {args.every:g} s "
                      f"for {args.minutes:g} min, through nginx proxy_cache")
    for name, figure in (("share answered by the cache", lambda r: f"{r.hits / max(r.fetches, 1):.1%}"),
                         ("fetches (views x images x 2)", lambda r: f"{r.fetches:,} ({r.views} x {args.images} x 2)"),
                         ("answered with bytes by the web", lambda r: f"{r.served_by_web:,}"),
                         ("variants", lambda r: f"{len(r.per_variant)}"),
                         ("times the web served each variant (min-max)",
                          lambda r: f"{min(r.per_variant.values(), default=0)}-{max(r.per_variant.values(), default=0)}"),
                         ("link windows seen", lambda r: f"{len(r.windows_seen)}")):
        target = name == "share answered by the cache" and args.minutes >= 10  # a shorter run's first view weighs more
        share = stable.hits / max(stable.fetches, 1)
        section.rows.append(Row(name, figure(stable), figure(per_second), "",
                                f"≥ {SHARE_TARGET:.0%} over 10 min" if target else "",
                                share >= SHARE_TARGET if target else None))
    section.notes.append("fluxhook: IMAGE_URL_WINDOW_SECONDS=3600 (the default); baseline: IMAGE_URL_WINDOW_SECONDS=1, "
                         "a new token every second as before windows; each a stack of its own (one gunicorn web of 2 "
                         "processes, a worker), the same minutes")
    section.notes.append("plain HTTP fetches of the srcset links a browser picks for a 256-px slot at 1x and 2x, "
                         "Chromium's Accept (format=auto answers AVIF); the first view of each window misses")
    errors = stable.errors + per_second.errors
    if errors:
        section.notes.append(f"{len(errors)} fetches not 200, first: {errors[0]}")
    print_report([section], spaced=True)


if __name__ == "__main__":
    main()
