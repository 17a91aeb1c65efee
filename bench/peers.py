"""Benchmark: fluxhook beside LiteLLM's proxy (its ``black_forest_labs/`` provider) on the same BFL workload.

    .venv/bin/python -m bench.peers [--quick] [--scenarios base,second_app,bfl_429,client_gone]
                                    [--requests 300] [--clients 20] [--task-delay 8] [--url-ttl 60]

Each scenario runs through each gateway in turn (which goes first alternates from one scenario to the next), each
time on a fresh simulator and gateway, so both meet the same BFL: one account of 24 slots, a submission answered
after 1 s, tasks of ``--task-delay`` seconds, result URLs that expire ``--url-ttl`` seconds after BFL made them
(BFL's 10 minutes, scaled down). ``--requests`` image requests come from ``--clients`` clients at once, each
sending its next request when its last one ends:

- base: that alone;
- second_app: a second app's ``--second`` requests from ``--second-clients`` clients arrive once half of the first
  app's have ended (fluxhook: two app keys; LiteLLM: two clients of its master key), beside the same requests with
  nothing else running (made first, on the same stack);
- bfl_429: once half have ended, BFL answers every submission 429 (its concurrency answer, ``Retry-After: 1``) for
  ``--outage`` seconds;
- client_gone: every client gives up on its request after ``--gone-after`` seconds and sends its next one; once all
  are sent it comes back for what it can (fluxhook: ``GET /v1/jobs/{id}``; LiteLLM has nothing to come back to).

In every scenario each image is opened at once, and again once every URL handed out has outlived BFL's expiry
("later": an app that keeps the URL and shows it an hour on). Figures per gateway: requests completed with an
image that opens later, and at once; p50/p99 from request to image opened; BFL's slots busy (from the simulator's
tasks); BFL calls (submissions and polls, the simulator's counters) per image; the gateway's CPU seconds and
peak RSS (its processes' trees, from /proc; fluxhook's Redis included); Redis commands per image (INFO
commandstats); tasks paid for and lost (URL expired, client gone, task duplicated); the second app's p99 beside
alone. Loopback only; LiteLLM runs from .venv-peers/ (`make bench-peers` installs it).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from . import peers_litellm
from .common import exit_on_sigterm, in_turn, loadavg, log, percentile
from .peers_figures import Outcome, RunFigures, figures, render, rows
from .peers_gateways import GATEWAYS, Gateway, sim_get, sim_settings

SCENARIOS = ("base", "second_app", "bfl_429", "client_gone")
SLOTS = 24
SUBMIT_DELAY = 1.0
QUICK = {"requests": 48, "clients": 8, "task_delay": 3.0, "url_ttl": 20, "second": 12, "second_clients": 4,
         "outage": 10.0, "gone_after": 2.0}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--gateways", default="fluxhook,litellm", help="comma-separated subset of fluxhook,litellm")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--task-delay", type=float, default=8.0)
    parser.add_argument("--url-ttl", type=int, default=60, help="seconds BFL's result URLs live (BFL: 600)")
    parser.add_argument("--second", type=int, default=50, help="second_app: the second app's requests")
    parser.add_argument("--second-clients", type=int, default=10)
    parser.add_argument("--outage", type=float, default=30.0, help="bfl_429: seconds BFL answers 429")
    parser.add_argument("--gone-after", type=float, default=5.0, help="client_gone: seconds a client waits")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    args.gateways = [g.strip() for g in args.gateways.split(",") if g.strip()]
    if not args.scenarios or set(args.scenarios) - set(SCENARIOS):
        parser.error(f"scenarios are among {', '.join(SCENARIOS)}")
    if not args.gateways or set(args.gateways) - set(GATEWAYS):
        parser.error("gateways are among fluxhook, litellm")
    return args


def bfl_settings(args: argparse.Namespace) -> dict:
    return {"task_delay": args.task_delay, "submit_delay": SUBMIT_DELAY, "url_ttl": args.url_ttl, "max_active": SLOTS,
            "scene_images": True, "image_format": "jpeg"}


# --------------------------------------------------------------------------- driving clients


@dataclass
class Progress:
    """Requests of the first app ended so far, and the moment half of them had."""

    total: int
    done: int = 0
    half: threading.Event | None = None

    def __post_init__(self) -> None:
        self.half = threading.Event()
        self.lock = threading.Lock()

    def one_more(self) -> None:
        with self.lock:
            self.done += 1
            if self.done * 2 >= self.total:
                self.half.set()  # type: ignore[union-attr]


def drive(gateway: Gateway, outcomes: list[Outcome], clients: int, give_up: float | None,
          progress: Progress | None = None) -> None:
    """``clients`` clients, each sending its next request as its last ends, until every one of ``outcomes`` is made."""
    pending = iter(outcomes)
    lock = threading.Lock()

    def client() -> None:
        session = gateway.session(outcomes[0].app)
        while True:
            with lock:
                outcome = next(pending, None)
            if outcome is None:
                return
            outcome.sent = time.time()
            gateway.request(session, outcome, give_up)
            if progress is not None:
                progress.one_more()

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()


def made(scenario: str, phase: str, app: str, count: int) -> list[Outcome]:
    # A prompt of its own per request: the simulator's tasks are matched to requests by it.
    return [Outcome(app, f"peers {scenario} {phase} {app} {n}", 0.0) for n in range(count)]


def later_check(gateway: Gateway, outcomes: list[Outcome], url_ttl: float) -> None:
    """Once every URL handed out has outlived BFL's expiry, open each again (what a client that kept it sees)."""
    handed = [o.opened_at for o in outcomes if o.opened_at is not None]
    if handed:
        time.sleep(max(0.0, max(handed) + url_ttl + 1 - time.time()))
    session = gateway.session("a")
    for outcome in outcomes:
        outcome.later = bool(outcome.url) and gateway.opens(session, outcome.url)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one run


class RssPeak:
    """The gateway's processes' summed RSS, sampled every 0.5 s while the run lasts."""

    def __init__(self, gateway: Gateway):
        self.gateway, self.peak, self.done = gateway, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.done.wait(0.5):
            rss = self.gateway.rss()
            if rss == rss:  # not NaN
                self.peak = max(self.peak, rss)

    def __enter__(self) -> "RssPeak":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()


def alone_p99(gateway: Gateway, scenario: str, args: argparse.Namespace) -> float:
    outcomes = made(scenario, "alone", "b", args.second)
    drive(gateway, outcomes, args.second_clients, None)
    return percentile([o.seconds for o in outcomes if o.seconds is not None], 99)


def measure(gateway: Gateway, scenario: str, args: argparse.Namespace) -> tuple[RunFigures, float | None]:
    """One gateway through one scenario on a fresh stack: its figures, and the second app's p99 alone (second_app)."""
    try:
        # Inside the try: a stop (Ctrl-C, SIGTERM) during a slow start still stops what had started.
        gateway.start(bfl_settings(args))
        alone = alone_p99(gateway, scenario, args) if scenario == "second_app" else None
        first = made(scenario, "main", "a", args.requests)
        second = made(scenario, "main", "b", args.second) if scenario == "second_app" else []
        progress = Progress(len(first))
        stats_before, redis_before, cpu_before = sim_get(gateway.sim_base, "stats"), gateway.redis_calls(), gateway.cpu()
        side = threading.Thread(target=_midway, args=(gateway, scenario, args, progress, second), daemon=True)
        with RssPeak(gateway) as rss:
            side.start()
            drive(gateway, first, args.clients, args.gone_after if scenario == "client_gone" else None, progress)
            side.join()
            if scenario == "client_gone":
                _come_back(gateway, first)
        stats_after, redis_after, cpu = sim_get(gateway.sim_base, "stats"), gateway.redis_calls(), gateway.cpu() - cpu_before
        tasks = [t for t in sim_get(gateway.sim_base, "tasks")["tasks"] if t["prompt"].startswith(f"peers {scenario} main ")]
        outcomes = first + second
        later_check(gateway, outcomes, args.url_ttl)
    finally:
        gateway.stop()
    redis_calls = None if redis_before is None or redis_after is None else redis_after - redis_before
    run = figures(outcomes, stats_before, stats_after, tasks, SLOTS, cpu, rss.peak, redis_calls)
    run.opens_refused = gateway.opens_refused
    return run, alone


def _midway(gateway: Gateway, scenario: str, args: argparse.Namespace, progress: Progress, second: list[Outcome]) -> None:
    """What happens once half of the first app's requests have ended: the second app's arrive, or BFL's 429s."""
    if scenario not in ("second_app", "bfl_429"):
        return
    progress.half.wait()  # type: ignore[union-attr]
    if scenario == "second_app":
        drive(gateway, second, args.second_clients, None)
        return
    sim_settings(gateway.sim_base, max_active=0)  # every submission over the limit: 429, Retry-After 1
    time.sleep(args.outage)
    sim_settings(gateway.sim_base, max_active=SLOTS)


def _come_back(gateway: Gateway, outcomes: list[Outcome]) -> None:
    session = gateway.session("a")
    for outcome in outcomes:
        if outcome.gone:
            gateway.come_back(session, outcome)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    print(f"bench-peers: {args.requests} requests from {args.clients} clients; BFL: {SLOTS} slots, submission "
          f"{SUBMIT_DELAY:g} s, tasks {args.task_delay:g} s, result URLs {args.url_ttl} s; LiteLLM {peers_litellm.VERSION}, "
          f"{peers_litellm.WORKERS} workers; fluxhook 2 web workers + 1 worker process + Redis; load {loadavg()}",
          flush=True)
    tables = []
    for n, scenario in enumerate(args.scenarios):
        results: dict[str, RunFigures] = {}
        alone: dict[str, float] = {}
        for name in in_turn(args.gateways, n):
            started = time.monotonic()
            log(f"{scenario}: {name} (load {loadavg()})")
            results[name], p99_alone = measure(GATEWAYS[name](), scenario, args)
            if p99_alone is not None:
                alone[name] = p99_alone
            log(f"{scenario}: {name} done in {time.monotonic() - started:.0f} s")
        if results:
            table = render(scenario, rows(results.get("fluxhook"), results.get("litellm"), alone or None))
            tables.append(table)
            print("\n" + table + "\n", flush=True)
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
