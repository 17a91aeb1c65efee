"""Benchmark: a catalog behind nginx across its links' turn, each job's link window at an offset of its own beside
windows aligned for every job (the rule before, a worktree of 0e38f28).

    .venv/bin/python -m bench.cdn --turn [--images 5000] [--window 300] [--sweep 60]

Each side is a stack of its own (one web, two workers, its own Redis and simulator) holding one key's batch of
``--images`` stored 256-px images, ``IMAGE_URL_WINDOW_SECONDS=--window`` (short, so a turn comes within the run),
the service's default read limit (the key's signed links: 6,000 a minute), and the same nginx in front
(deploy/nginx/fluxhook.conf, devtools/nginx_cache.py). The stack runs in a process of its own from its tree's code;
this process drives both over the same minutes. Shoppers: every variant of the catalog (three widths, Chromium's
``Accept``) asked once every ``--sweep`` seconds through nginx, with the links of a fresh read of the batch's results
every ``--every`` seconds, as a shop's server renders its pages. First the cache is filled with the key's
``reads_per_minute`` raised out of the way (the first visit to a catalog is a cliff of its own, not this bench's);
then it is back at the service's default and one window and one sweep are measured: the origin's peak requests a
second, the ``429`` answers and the share the cache answered (nginx's log). Needs nginx (``sh devtools/nginx.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import requests

from bench.common import Row, Section, log, print_report
from devtools.nginx_cache import BROWSER_ACCEPT, CachingProxy
from devtools.processes import ROOT

BASELINE_COMMIT = "0e38f28"
SIZE = 256
# The key's reads_per_minute while the cache is filled: its links' limit out of the way.
FILLING = 1_000_000
WIDTHS = ("64", "128", "256")
OFFSETS, ALIGNED = "fluxhook (offsets)", f"{BASELINE_COMMIT} (aligned)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--window", type=int, default=300, help="IMAGE_URL_WINDOW_SECONDS of both stacks")
    parser.add_argument("--sweep", type=float, default=60.0, help="seconds in which shoppers ask for every variant")
    parser.add_argument("--baseline-tree", default=f"/tmp/fluxhook-{BASELINE_COMMIT}")
    parser.add_argument("--stack", action="store_true", help=argparse.SUPPRESS)  # one side's stack, in this process


# --------------------------------------------------------------------------- one side's stack (its tree's code)


def serve(images: int, window: int) -> None:
    """Start a stack from the tree on the path, store the catalog, tell the parent where it is (one JSON line on
    stdout), and keep it until stdin closes."""
    from bench.common import BenchStack

    with BenchStack(f"cdn-turn-{window}", log_level="WARNING", IMAGE_URL_WINDOW_SECONDS=str(window),
                    IMAGE_URL_TTL_SECONDS="3600", PYTHONPATH=os.environ["PYTHONPATH"]).start(workers=2) as stack:
        admin = stack.api_session()
        key = admin.post(stack.base_url + "/v1/keys", json={"name": "shop", "reads_per_minute": FILLING},
                         timeout=30).json()
        items = [{"input": {"prompt": f"product {n}", "width": SIZE, "height": SIZE}, "metadata": {"sku": f"P-{n}"}}
                 for n in range(images)]
        answer = requests.post(stack.base_url + "/v1/batches", json={"model": "flux-2-pro", "items": items},
                               headers={"Authorization": f"Bearer {key['key']}"}, timeout=120)
        answer.raise_for_status()
        batch = answer.json()["id"]
        deadline = time.monotonic() + 3600
        while not admin.get(f"{stack.base_url}/v1/batches/{batch}", timeout=30).json().get("ended_at"):
            if time.monotonic() > deadline:
                raise SystemExit(f"the batch of {images} did not end within an hour")
            time.sleep(1)
        print(json.dumps({"base_url": stack.base_url, "batch": batch, "key": key["id"],
                          "admin": admin.headers["Authorization"]}), flush=True)
        sys.stdin.read()


def start_side(tree: Path, args: argparse.Namespace) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--stack", "--images", str(args.images),
                             "--window", str(args.window)], cwd=tree, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


# --------------------------------------------------------------------------- the shoppers (this tree)


class Side:
    """One stack's catalog through its nginx, and what its log says of the measured minutes."""

    def __init__(self, name: str, info: dict, cdn: CachingProxy):
        self.name, self.info, self.cdn = name, info, cdn
        self.admin = requests.Session()
        self.admin.headers["Authorization"] = info["admin"]
        self.urls: list[str] = []
        self.figures: dict = {}

    def read_links(self) -> None:
        """A fresh read of the batch's results, as a shop's server renders its pages: each variant's link on nginx."""
        text = self.admin.get(f"{self.info['base_url']}/v1/batches/{self.info['batch']}/results", timeout=120).text
        urls = []
        for line in (json.loads(raw) for raw in text.splitlines() if raw.strip()):
            for entry in (line.get("image") or {}).get("srcset", "").split(", "):
                url, _, width = entry.rpartition(" ")
                if width[:-1] in WIDTHS:
                    parts = urlsplit(url)
                    urls.append(f"{self.cdn.base_url}{parts.path}?{parts.query}")
        self.urls = urls

    def fill(self, pool: ThreadPoolExecutor) -> None:
        """Ask for every variant, with links read afresh, each until it is made (the web answers ``503`` while it is
        busy making others), as fast as it answers, until a pass is answered by the cache (at most five)."""
        for _ in range(5):
            self.read_links()
            seen = len(self.cdn.log())
            list(pool.map(_made, self.urls))
            lines = self.cdn.log()[seen:]
            if sum(line["cache"] == "HIT" for line in lines) >= 0.99 * len(lines):
                return

    def ask(self, pool: ThreadPoolExecutor, rate: float, seconds: float, every: float) -> None:
        """Ask for the catalog's variants in turn, ``rate`` a second for ``seconds``, reading the links afresh every
        ``every`` seconds."""
        started = read_at = time.monotonic()
        asked = 0
        while (elapsed := time.monotonic() - started) < seconds:
            if time.monotonic() - read_at >= every:
                self.read_links()
                read_at = time.monotonic()
            for _ in range(int(elapsed * rate) - asked):
                pool.submit(_get, self.urls[asked % len(self.urls)])
                asked += 1
            time.sleep(0.02)

    def measure(self, since: float, until: float) -> None:
        lines = [line for line in self.cdn.log() if line["uri"].startswith("/v1/jobs/")
                 and since <= float(line["time"]) < until]
        origin = Counter(int(float(line["time"])) for line in lines if line["origin"])
        self.figures = {"requests": len(lines), "hits": sum(line["cache"] == "HIT" for line in lines),
                        "origin": sum(origin.values()), "peak": max(origin.values(), default=0),
                        "refused": sum(line["status"] == "429" for line in lines),
                        "not_ok": dict(Counter(line["status"] for line in lines if line["status"] not in ("200",
                                                                                                        "429")))}


_SESSION = threading.local()


def _get(url: str) -> int:
    """``url``'s status through nginx (0: no answer: nginx's log has every answer it gave, and one it never gave is
    not a figure of the origin's)."""
    session = getattr(_SESSION, "session", None) or requests.Session()
    _SESSION.session = session
    try:
        return session.get(url, headers={"Accept": BROWSER_ACCEPT}, timeout=60).status_code
    except requests.RequestException:
        return 0


def _made(url: str) -> None:
    for _ in range(100):
        if _get(url) != 503:
            return
        time.sleep(0.5)


def drive(side: Side, args: argparse.Namespace, filled: threading.Barrier) -> None:
    side.read_links()
    rate = len(side.urls) / args.sweep
    with ThreadPoolExecutor(max_workers=32) as pool:
        side.fill(pool)
    # The service's own limit again (null: READS_PER_MINUTE); it reaches every web process within a second.
    side.admin.patch(f"{side.info['base_url']}/v1/keys/{side.info['key']}", json={"reads_per_minute": None},
                     timeout=30).raise_for_status()
    time.sleep(1.5)
    filled.wait()
    with ThreadPoolExecutor(max_workers=32) as pool:
        since = time.time()
        seconds = args.window + args.sweep
        side.ask(pool, rate, seconds, args.every)
    side.measure(since, since + seconds)


def turn_main(args: argparse.Namespace) -> None:
    if args.stack:
        serve(args.images, args.window)
        return
    from bench.latency import ensure_baseline

    tree = ensure_baseline(Path(args.baseline_tree), BASELINE_COMMIT)
    log(f"two stacks ({OFFSETS}, {ALIGNED}), a batch of {args.images:,} images each, window {args.window} s")
    children = {OFFSETS: start_side(ROOT, args), ALIGNED: start_side(tree, args)}
    proxies: list[CachingProxy] = []
    try:
        infos = {}
        for name, child in children.items():
            said = child.stdout.readline() if child.stdout else ""
            if not said:
                raise SystemExit(f"{name}: its stack ended before its catalog was stored (its stderr is above)")
            infos[name] = json.loads(said)
        sides = []
        for name, info in infos.items():
            proxies.append(CachingProxy(urlsplit(info["base_url"]).netloc,
                                        Path(tempfile.mkdtemp(prefix="fluxhook-bench-cdn-turn-nginx-"))))
            sides.append(Side(name, info, proxies[-1].start()))
        log(f"catalogs stored; filling each cache, then {args.window + args.sweep:g} s of shoppers")
        filled = threading.Barrier(len(sides))
        threads = [threading.Thread(target=drive, args=(side, args, filled)) for side in sides]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for proxy in proxies:
            proxy.stop()
            shutil.rmtree(proxy.folder, ignore_errors=True)  # its cache: every variant of the catalog
        for child in children.values():
            if child.stdin:
                child.stdin.close()
            child.wait(timeout=120)
    report(sides, args)


def report(sides: list[Side], args: argparse.Namespace) -> None:
    new, old = (side.figures for side in sides)
    section = Section(f"A catalog of {args.images:,} images in {len(WIDTHS)} widths ({args.images * len(WIDTHS):,} "
                      f"variants) through nginx across a {args.window}-s window's turn, every variant asked once "
                      f"every {args.sweep:g} s")

    def share(f: dict) -> str:
        return f"{f['hits'] / max(f['requests'], 1):.1%}"

    rows = (("the origin's peak requests a second", lambda f: f"{f['peak']:,}", None),
            ("the origin's requests, all", lambda f: f"{f['origin']:,}", None),
            ("answered 429", lambda f: f"{f['refused']:,}", new["refused"] == 0),
            ("share answered by the cache", share, None),
            ("image requests", lambda f: f"{f['requests']:,}", None))
    for name, figure, met in rows:
        section.rows.append(Row(name, figure(new), figure(old), "", "0" if met is not None else "", met))
    section.notes.append(f"each side: one web, two workers, its own Redis and simulator, READS_PER_MINUTE at its "
                         f"default (the key's links 6,000 a minute), IMAGE_URL_WINDOW_SECONDS={args.window}; the "
                         f"cache filled first, the key's limit raised; measured: one window and one "
                         f"sweep after, the limit the service's")
    for side in sides:
        if side.figures["not_ok"]:
            section.notes.append(f"{side.name}: answers neither 200 nor 429: {side.figures['not_ok']}")
    print_report([section], spaced=True)


if __name__ == "__main__":  # one side's stack, run from its tree (bench.cdn --turn starts it)
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--every", type=float, default=5.0)
    add_arguments(parser)
    turn_main(parser.parse_args())
