"""Benchmark: a CDN in front of fluxhook's images, with links stable for a window beside per-second links.

    .venv/bin/python -m bench.cdn [--minutes 10] [--every 10] [--images 25]
    .venv/bin/python -m bench.cdn --turn [--images 5000] [--window 300] [--sweep 60]  (bench/cdn_turn.py)

A catalog page of ``--images`` stored images (the simulator's photo-like 1024x1024 JPEGs) is rendered from a fresh
API read (``GET /v1/jobs``, one page of the key's jobs) every ``--every`` seconds for ``--minutes``, with the API
guide's own ``<img srcset sizes>`` snippet (devtools/browser_page.py reads it from docs/api.md), its links on Debian's
nginx with ``proxy_cache`` running deploy/nginx/fluxhook.conf (devtools/nginx_cache.py). Each view opens the page in
Debian's Chromium at two screens, a phone 390 px wide at 3x and a desktop 1,400 px wide at 1x, whose ``sizes`` take
different variants, and scrolls through it until every image has loaded. Each opening is a new browser context:
Chromium's own cache would otherwise answer the repeat views itself and hide them from the CDN, which sees many
visitors, each with an empty cache. Two stacks side by side over the same minutes, each with its own nginx and
Chromium: ``IMAGE_URL_WINDOW_SECONDS`` at its default (3600) and at 1 (a new token every second, the behaviour before
windows). Printed: the share of image requests the cache answered (nginx's log, target at least 95 % over 10
minutes), the service's answers with bytes per variant (its own request log) and the variant each screen took. Needs
nginx and Chromium (``sh devtools/nginx.sh``, ``sh devtools/chromium.sh``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests
from playwright.sync_api import sync_playwright

from devtools.browser_page import ARGS, CHROMIUM, PageServer, catalog, on_host, view
from devtools.nginx_cache import CachingProxy, nginx_binary

from . import cdn_turn
from .common import BenchStack, Row, Section, log, median, print_report

SHARE_TARGET = 0.95
# (CSS px, device pixels per CSS px): through the guide's `sizes`, 1,170 device px (the largest, 1024w) and 640.
SCREENS = ((390, 3), (1400, 1))
SIZE = 1024


@dataclass
class Run:
    """One stack's figures."""

    window: int
    views: int = 0
    requests: int = 0
    hits: int = 0
    not_ok: Counter = field(default_factory=Counter)
    view_seconds: list[float] = field(default_factory=list)
    windows_seen: set[int] = field(default_factory=set)
    taken: dict[tuple[int, int], Counter] = field(default_factory=lambda: {screen: Counter() for screen in SCREENS})
    # The service's answers with bytes, per (job, variant), from its own request log.
    served: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _stored_page(stack: BenchStack, app: requests.Session, count: int) -> None:
    for n in range(count):
        body = {"model": "flux-2-pro", "input": {"prompt": f"catalog item {n}", "width": SIZE, "height": SIZE}}
        app.post(stack.base_url + "/v1/jobs", json=body, timeout=30).raise_for_status()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        jobs = app.get(stack.base_url + "/v1/jobs", params={"limit": count}, timeout=30).json()["jobs"]
        if sum(job["status"] == "stored" for job in jobs) == count:
            return
        time.sleep(0.2)
    raise SystemExit(f"{count} jobs not stored within 300 s")


def _served(web_log: Path) -> Counter:
    served: Counter = Counter()
    for text in web_log.read_text(errors="replace").splitlines():
        if text.startswith("{") and '"/v1/jobs/<job_id>/image"' in text:
            line = json.loads(text)
            if line.get("status") == 200:
                served[line.get("job_id"), line.get("variant", "original")] += 1
    return served


def run(window: int, images: int, minutes: float, every: float, start_at: threading.Barrier, run: Run) -> None:
    with BenchStack(f"cdn-{window}", log_level="INFO", IMAGE_URL_WINDOW_SECONDS=str(window),
                    IMAGE_URL_TTL_SECONDS="3600", READS_PER_MINUTE="100000").start(workers=1) as stack:
        admin = stack.api_session()
        key = admin.post(stack.base_url + "/v1/keys", json={"name": "bench-cdn"}, timeout=30).json()
        app = requests.Session()
        app.headers["Authorization"] = f"Bearer {key['key']}"
        _stored_page(stack, app, images)
        with CachingProxy(urlsplit(stack.base_url).netloc, stack.var_dir / "nginx") as cdn, PageServer() as page, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            start_at.wait()
            started = time.monotonic()
            while time.monotonic() - started < minutes * 60:
                tick = time.monotonic()
                run.windows_seen.add(int(time.time()) // window)
                jobs = app.get(stack.base_url + "/v1/jobs", params={"limit": images}, timeout=30).json()["jobs"]
                page.html = catalog([on_host(job, stack.base_url, cdn.base_url) for job in jobs])
                for screen in SCREENS:
                    try:
                        run.taken[screen].update(parse_qs(urlsplit(url).query)["w"][0]
                                                 for url in view(browser, page.url, *screen))
                    except Exception as exc:  # noqa: BLE001 (one view that failed is a figure, not the end of the run)
                        run.errors.append(f"{screen}: {str(exc)[:200]}")
                run.views += 1
                run.view_seconds.append(time.monotonic() - tick)
                time.sleep(max(0.0, every - (time.monotonic() - tick)))
            browser.close()
            for line in cdn.log():
                if line["uri"].startswith("/v1/jobs/") and "/image?" in line["uri"]:
                    run.requests += 1
                    run.hits += line["cache"] == "HIT"
                    if line["status"] != "200":
                        run.not_ok[line["status"]] += 1
        run.served = _served(stack.var_dir / "web.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between two views of the page")
    parser.add_argument("--images", type=int, help="stored images (default 25; with --turn, 5,000)")
    parser.add_argument("--turn", action="store_true", help="a catalog across a window's turn (bench/cdn_turn.py)")
    cdn_turn.add_arguments(parser)
    args = parser.parse_args()
    if nginx_binary() is None:
        raise SystemExit("no nginx: `sh devtools/nginx.sh` installs Debian's (root and apt-get)")
    if args.turn:
        args.images = args.images or 5000
        cdn_turn.turn_main(args)
        return
    args.images = args.images or 25
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
    screens = " and ".join(f"{width:,} px at {ratio}x" for width, ratio in SCREENS)
    section = Section(f"A page of {args.images} images rendered in Chromium at {screens}, read afresh every "
                      f"{args.every:g} s for {args.minutes:g} min, each view a new visitor, through nginx proxy_cache")

    def share(r: Run) -> str:
        return f"{r.hits / max(r.requests, 1):.1%}"

    def per_kind(r: Run) -> str:
        kinds: Counter = Counter()
        for (_, variant), times in r.served.items():
            kinds[variant] += times
        return ", ".join(f"{variant}: {times:,}" for variant, times in sorted(kinds.items())) or "none"

    def each(r: Run) -> str:
        return f"{min(r.served.values(), default=0)}-{max(r.served.values(), default=0)}"

    def taken(r: Run) -> str:
        return "; ".join(f"{width:,} px {ratio}x: " + ", ".join(f"{w}w" for w in sorted(r.taken[width, ratio], key=int))
                         for width, ratio in SCREENS)

    rows = (("share of image requests answered by the cache", share),
            ("image requests (views x images x screens)",
             lambda r: f"{r.requests:,} ({r.views} x {args.images} x {len(SCREENS)})"),
            ("the service's answers with bytes", lambda r: f"{sum(r.served.values()):,}"),
            ("the service's answers per variant", per_kind),
            ("variants served / times the service served each (min-max)", lambda r: f"{len(r.served)} / {each(r)}"),
            ("variant each screen took", taken),
            ("a view's time, both screens, median", lambda r: f"{median(r.view_seconds):.1f} s"),
            ("link windows seen", lambda r: f"{len(r.windows_seen)}"))
    for name, figure in rows:
        target = figure is share and args.minutes >= 10  # a shorter run's first view weighs more
        met = stable.hits / max(stable.requests, 1) >= SHARE_TARGET
        section.rows.append(Row(name, figure(stable), figure(per_second), "",
                                f"≥ {SHARE_TARGET:.0%} over 10 min" if target else "", met if target else None))
    section.notes.append("fluxhook: IMAGE_URL_WINDOW_SECONDS=3600 (the default); baseline: IMAGE_URL_WINDOW_SECONDS=1, "
                         "a new token every second as before windows; each a stack of its own (one gunicorn web of 2 "
                         "processes, a worker, nginx, Chromium), the same minutes")
    section.notes.append("each view: the docs' <img srcset sizes> snippet per job of a fresh GET /v1/jobs, opened in a "
                         "new browser context per screen (a visitor with an empty cache) and scrolled through until "
                         "every image loaded; Chromium's Accept makes format=auto AVIF; the first view of each window "
                         "misses")
    for r in runs:
        if r.not_ok:
            section.notes.append(f"window {r.window}: image requests not 200: {dict(r.not_ok)}")
        if r.errors:
            section.notes.append(f"window {r.window}: {len(r.errors)} views failed, first: {r.errors[0]}")
    print_report([section], spaced=True)

if __name__ == "__main__":
    main()
