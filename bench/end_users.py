"""Benchmark: fair turns inside a key, one of its 1,000 end users flooding it, beside the same run without the flood.

    .venv/bin/python -m bench.end_users [--end-users 1000] [--flood 500] [--others 100] [--every 0.5]
                                        [--slots 24] [--submit-delay 1] [--task-delay 4] [--cost-jobs 20]

One stack (the Procfile's web and one worker on a Redis of their own) before the simulator as BFL behaves: ``--slots``
slots, each submission answered after ``--submit-delay`` seconds, tasks of ``--task-delay`` seconds. One app key; every
job is posted through ``POST /v1/jobs`` with the key's secret and its ``end_user``.

- **Redis commands per stored job**, with an end user named and without: the key's ``--cost-jobs`` jobs of no end user
  posted at once and waited for until each is stored with its thumbnail, then as many, each of another end user.
  Redis's own ``INFO commandstats`` before and after, less what the same stack ran per second idle just before (as
  tests/e2e/worker/test_redis_cost.py counts). The bench's own commands (``INFO``, ``HSTRLEN``) stay out of the count.
Each task's length is drawn between half and one and a half ``--task-delay`` (the prompt's ``[seconds-N]``), as BFL's
vary: slots then free one at a time, not in waves of a flood's jobs sent together.

- **The others' time to BFL, alone**: ``--others`` single jobs, each of another of the key's end users (of
  ``--end-users``), one every ``--every`` seconds; each job's wait from its creation to BFL's acceptance of its task
  (``submitted_at``: the submission's second included), p50 and p99.
- **The same with a flooder**: the key's end user ``user-0`` posts ``--flood`` jobs at once, then the others' trickle
  again, while the flood keeps every slot busy and hundreds of its jobs wait. With fair turns inside the key, each of
  the others waits for at most the flooder's one turn, the next slot that frees: its p99 stays within 1.5x of alone
  when slots free often enough (one turn at p99 is about ln(100) x the mean gap between two slots freeing, slots /
  (submission + task) a second); queued behind the flood, it would wait for the flood itself (minutes). One turn is
  shown too: the gaps between the flood's tasks ending (``finished_at``) while the others were posted.

Loopback only; nothing outside temporary directories changes.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.common import (
    BenchStack,
    Row,
    Section,
    exit_on_sigterm,
    fmt,
    log,
    median,
    percentile,
    print_report,
    read_jobs,
    thread_session,
)

TARGET_RATIO = 1.5
TARGET_EXTRA_COMMANDS = 5
FLOODER = "user-0"
IDLE_SECONDS = 4.0
# The bench's own commands, left out of the count.
OWN = ("cmdstat_info", "cmdstat_hstrlen")
WAIT_TIMEOUT = 600.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.end_users", description=__doc__.split("\n\n")[0])
    parser.add_argument("--end-users", type=int, default=1000, help="the key's end users (the flooder one of them)")
    parser.add_argument("--flood", type=int, default=500, help="the flooder's jobs, posted at once")
    parser.add_argument("--others", type=int, default=100, help="the other end users' single jobs, in each phase")
    parser.add_argument("--every", type=float, default=0.5, help="seconds between two of the others' jobs")
    parser.add_argument("--slots", type=int, default=24, help="BFL_MAX_ACTIVE (and the simulator's slots)")
    parser.add_argument("--submit-delay", type=float, default=1.0, help="seconds BFL takes to answer a submission")
    parser.add_argument("--task-delay", type=float, default=2.0,
                        help="seconds a task takes at BFL, on average (each between half and 1.5 times it)")
    parser.add_argument("--cost-jobs", type=int, default=20, help="jobs of each kind whose Redis commands are counted")
    parser.add_argument("--cost-rounds", type=int, default=3,
                        help="rounds of the count, each of both kinds (their medians are shown)")
    args = parser.parse_args(argv)
    if args.others * 2 + 1 > args.end_users:
        parser.error("--end-users must leave the others one end user each, in both phases, beside the flooder")
    return args


class Poster:
    """POST /v1/jobs with one app key's secret, from threads of their own."""

    def __init__(self, stack: BenchStack, secret: str):
        self.url, self.secret, self.local = stack.base_url + "/v1/jobs", secret, threading.local()

    def post(self, prompt: str, end_user: str | None) -> str:
        body: dict[str, Any] = {"model": "flux-2-pro", "input": {"prompt": prompt}}
        if end_user is not None:
            body["end_user"] = end_user
        response = thread_session(self.local, self.secret).post(self.url, json=body, timeout=60)
        if response.status_code != 202:
            raise RuntimeError(f"POST /v1/jobs answered {response.status_code}: {response.text[:300]}")
        return response.json()["id"]

    def many(self, prompts_and_users: list[tuple[str, str | None]], threads: int = 8) -> list[str]:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(lambda pair: self.post(*pair), prompts_and_users))


def _by_command(db) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in db.info("commandstats").items()
            if name not in OWN}


def _calls(db) -> int:
    return sum(_by_command(db).values())


def _wait(what: str, done, timeout: float = WAIT_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def commands_per_job(stack: BenchStack, poster: Poster, jobs: int,
                     end_users: Sequence[str | None]) -> tuple[float, dict[str, float]]:
    """Redis commands per stored job of ``jobs`` posted at once, the n-th of end user ``end_users[n]``; and per job
    by command (the idle rate not taken off)."""
    from fluxhook.store.keys import KEYS

    db = stack.redis()
    idle_from, idle_started = _calls(db), time.monotonic()
    time.sleep(IDLE_SECONDS)
    idle_rate = (_calls(db) - idle_from) / (time.monotonic() - idle_started)
    before, started = _by_command(db), time.monotonic()
    ids = poster.many([(f"bench end users cost {n}", end_users[n]) for n in range(jobs)])
    _wait("every job stored with its thumbnail", lambda: all(db.hstrlen(KEYS.job(j), "thumbnail_key") for j in ids))
    time.sleep(1.0)  # the tasks' ends and the lanes' feeds after them
    after = _by_command(db)
    by_command = {name: (calls - before.get(name, 0)) / jobs for name, calls in after.items()}
    return sum(by_command.values()) - idle_rate * (time.monotonic() - started) / jobs, by_command


def seconds(rng: random.Random, task_delay: float) -> str:
    """A prompt's marker for a task length between half and 1.5 times ``task_delay``."""
    return f"[seconds-{task_delay * rng.uniform(0.5, 1.5):.2f}]"


def trickle(stack: BenchStack, poster: Poster, users: list[str], every: float, label: str,
            task_delay: float) -> tuple[list[float], float, float]:
    """One job of each of ``users``, one every ``every`` seconds; each one's seconds from creation to BFL's
    acceptance, once every one was accepted; and when the first and the last were posted."""
    rng = random.Random(label)
    ids: list[str] = []
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        futures = []
        for n, user in enumerate(users):
            delay = started + n * every - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(poster.post, f"bench end users {label} {n} {seconds(rng, task_delay)}", user))
        ids = [f.result() for f in futures]
    window = (time.time() - (time.monotonic() - started), time.time())
    db = stack.redis()

    def accepted() -> bool:
        return all(r["submitted_at"] for r in read_jobs(db, ids, ["submitted_at"]))

    _wait(f"the {label} jobs accepted by BFL", accepted)
    waits = [float(r["submitted_at"] or "nan") - float(r["created_at"] or "nan")
             for r in read_jobs(db, ids, ["created_at", "submitted_at"])]
    return waits, *window


def run(args: argparse.Namespace) -> dict:
    stack = BenchStack("end-users", log_level="WARNING", BFL_MAX_ACTIVE=str(args.slots))
    try:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay, task_delay=args.task_delay, max_active=args.slots * 4,
                           scene_images=False, image_format="png")
        admin = stack.api_session()
        made = admin.post(stack.base_url + "/v1/keys", json={
            "name": "bench end users", "requests_per_minute": 100_000,
            "max_queued": max(1000, args.flood * 2)}, timeout=30)
        made.raise_for_status()
        poster = Poster(stack, made.json()["key"])
        users = [f"user-{n}" for n in range(1, args.end_users)]

        counts: dict[str, list[float]] = {"without": [], "named": []}
        more: dict[str, float] = {}
        for round_ in range(args.cost_rounds):
            log(f"Redis commands, round {round_ + 1} of {args.cost_rounds}: {args.cost_jobs} stored jobs of no end "
                f"user, then {args.cost_jobs} of one each")
            count, plain = commands_per_job(stack, poster, args.cost_jobs, [None] * args.cost_jobs)
            counts["without"].append(count)
            named_by = users[-(round_ + 1) * args.cost_jobs:][:args.cost_jobs]
            count, named = commands_per_job(stack, poster, args.cost_jobs, named_by)
            counts["named"].append(count)
            for name in set(plain) | set(named):
                more[name] = more.get(name, 0.0) + (named.get(name, 0.0) - plain.get(name, 0.0)) / args.cost_rounds

        log(f"alone: {args.others} jobs of {args.others} end users, one every {args.every:g} s")
        alone, _, _ = trickle(stack, poster, users[:args.others], args.every, "alone", args.task_delay)

        log(f"flooded: {FLOODER} posts {args.flood} jobs at once, then the others' trickle again")
        flood_started = time.monotonic()
        rng = random.Random("flood")
        flood = poster.many([(f"bench end users flood {n} {seconds(rng, args.task_delay)}", FLOODER)
                             for n in range(args.flood)])
        posted_in = time.monotonic() - flood_started
        flooded, since, until = trickle(stack, poster, users[args.others:2 * args.others], args.every, "flooded",
                                        args.task_delay)
        read = read_jobs(stack.redis(), flood, ["submitted_at", "finished_at"])
        left = sum(1 for r in read if not r["submitted_at"])
        ends = sorted(t for r in read if r["finished_at"] and since <= (t := float(r["finished_at"])) <= until)
        return {"without": median(counts["without"]), "named": median(counts["named"]),
                "extras": [n - w for n, w in zip(counts["named"], counts["without"], strict=True)], "alone": alone,
                "flooded": flooded, "flood_left": left, "more": more,
                "flood_posted_in": posted_in, "turns": [b - a for a, b in zip(ends, ends[1:], strict=False)]}
    finally:
        stack.stop()
        stack.cleanup()


def report(args: argparse.Namespace, figures: dict) -> None:
    alone, flooded = figures["alone"], figures["flooded"]
    alone_p99, flooded_p99 = percentile(alone, 99), percentile(flooded, 99)
    ratio = flooded_p99 / alone_p99 if alone_p99 else float("inf")
    extra = median(figures["extras"])
    turns = figures["turns"]
    beyond = (flooded_p99 - alone_p99) / percentile(turns, 99) if len(turns) > 1 else float("nan")
    shown = Section(
        f"the others beside {FLOODER}'s {args.flood} jobs (baseline: alone, same run)",
        [Row("time to BFL p50 (creation -> accepted)", fmt(percentile(flooded, 50), 2, " s"),
             fmt(percentile(alone, 50), 2, " s"), fmt(percentile(flooded, 50) / percentile(alone, 50), 2, "x")),
         Row("time to BFL p99", fmt(flooded_p99, 2, " s"), fmt(alone_p99, 2, " s"), fmt(ratio, 2, "x"),
             f"<= {TARGET_RATIO:g}x alone", ratio <= TARGET_RATIO),
         Row("one turn: the gap between two of the flood's tasks ending, p50 / p99",
             f"{fmt(percentile(turns, 50), 2)} / {fmt(percentile(turns, 99), 2, ' s')}"),
         Row("the others' p99 beyond alone, in turns (p99 gaps)", fmt(beyond, 2), target="<= 1 turn (info)"),
         Row(f"{FLOODER}'s jobs not yet at BFL as the last other got there", str(figures["flood_left"]))],
        [f"{args.others} jobs a phase, each of another end user, one every {args.every:g} s; BFL answering each "
         f"submission after {args.submit_delay:g} s, tasks of {args.task_delay:g} s, {args.slots} slots.",
         f"The flood was posted in {figures['flood_posted_in']:.1f} s; the last row above zero says it still held "
         f"jobs in line for the whole trickle."])
    cost = Section(
        "Redis commands per stored job (baseline: no end user named)",
        [Row("an end user named (median difference of the rounds)", fmt(figures["named"], 1),
             fmt(figures["without"], 1), f"{extra:+.1f}",
             f"<= +{TARGET_EXTRA_COMMANDS}", extra <= TARGET_EXTRA_COMMANDS)],
        [f"{args.cost_jobs} jobs of each posted at once and waited for until stored with their thumbnails; INFO "
         f"commandstats before and after, less the stack's idle rate just before; medians of {args.cost_rounds} "
         f"rounds (each round's difference: {', '.join(f'{e:+.1f}' for e in figures['extras'])}).",
         "By command, a job with an end user named against one without (the rounds' mean, those of 0.3 or more): "
         + ", ".join(f"{name} {value:+.1f}" for value, name in
                     sorted(((v, n) for n, v in figures["more"].items() if abs(v) >= 0.3), reverse=True))])
    print_report([shown, cost], spaced=True)


def main(argv: list[str] | None = None) -> None:
    exit_on_sigterm()
    args = parse_args(argv)
    report(args, run(args))


if __name__ == "__main__":
    main()
