"""Benchmark: fair turns inside a key, one of its 1,000 end users flooding it, beside the same run without the flood.

    .venv/bin/python -m bench.end_users [--end-users 1000] [--flood 500] [--others 100] [--every 0.5]
                                        [--slots 24] [--submit-delay 1] [--task-delay 2] [--cost-jobs 20]

One stack (the Procfile's web and one worker on a Redis of their own) before the simulator as BFL behaves: ``--slots``
slots, each submission answered after ``--submit-delay`` seconds, tasks of ``--task-delay`` seconds. Two app keys;
every job is posted through ``POST /v1/jobs`` with its key's secret and (key A's) its ``end_user``.

- **Redis commands per stored job**, with an end user named and without: key A's ``--cost-jobs`` jobs of no end user
  posted at once and waited for until each is stored with its thumbnail, then as many, each of another end user.
  Redis's own ``INFO commandstats`` before and after, less what the same stack ran per second idle just before (as
  tests/e2e/worker/test_redis_cost.py counts). The bench's own commands (``INFO``, ``HSTRLEN``) stay out of the count.
Each task's length is drawn between half and one and a half ``--task-delay`` (the prompt's ``[seconds-N]``), as BFL's
vary: slots then free one at a time, not in waves of a flood's jobs sent together.

The others' time to BFL: ``--others`` single jobs, each of another of key A's end users (of ``--end-users``), one
every ``--every`` seconds; each job's wait from its creation to BFL's acceptance of its task (``submitted_at``: the
submission's second included), p50 and p99. Three phases, each its own others, with the same task lengths:

- **alone, slots idle** (shown, not judged): nothing else runs, so each takes a free slot at once.
- **alone in its key, the slots as busy** (the baseline): key B posts ``--flood`` jobs at once, then the others'
  trickle, while B's flood keeps every slot busy; each of the others waits for the next slot that frees (the rule
  between keys), then the rest of B's flood is canceled.
- **with a flooder in its key**: key A's end user ``user-0`` posts the same flood, then the trickle again. With fair
  turns inside the key, each of the others waits for the next slot that frees as beside another key's flood: its p99
  within 1.5x of the baseline's; queued behind the flood, it would wait for the flood itself (minutes).
Idle slots are no baseline for that: one wait for a slot to free at p99 is about ln(100) x the mean gap between two
slots freeing, (submission + task) / slots, so beside any flood the p99 is about 1 + ln(100) / (submissions in flight)
times that of idle slots whatever the turns: 1.5x with these defaults (8 in flight), over it in one run of three.
The turns are counted too: while the others wait, the bench watches the slots (``ZRANGE`` every 50 ms: each job's
score is when it took its slot), and counts for each of the others the flood's jobs that took a slot after its
POST was answered (it was in line by then) and before it: at most one (the flooder's one turn while it keeps no
pass). One turn's length is shown: the gaps between the flood's tasks ending (``finished_at``) while the others
were posted.

Loopback only; nothing outside temporary directories changes.
"""

from __future__ import annotations

import argparse
import math
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
# How often the slots are read while the others wait (the bench's own ZRANGE, 20 a second).
WATCH_EVERY = 0.05


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
    if args.others * 3 + 1 > args.end_users:
        parser.error("--end-users must leave the others one end user each, in the three phases, beside the flooder")
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

    def cancel(self, job_ids: list[str], threads: int = 8) -> None:
        """``POST /v1/jobs/{id}/cancel`` for each (one sent meanwhile answers 200 as well, or 409 once ended)."""
        def one(job_id: str) -> None:
            response = thread_session(self.local, self.secret).post(f"{self.url}/{job_id}/cancel", timeout=60)
            if response.status_code not in (200, 409):
                raise RuntimeError(f"cancel answered {response.status_code}: {response.text[:300]}")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, job_ids))


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


class SlotWatch:
    """When each job took its BFL slot, while ``with`` lasts: the slots' sorted set read every ``WATCH_EVERY`` s (a
    job holds its slot for its submission's second at least, so none is missed), each job's score kept."""

    def __init__(self, stack: BenchStack):
        from fluxhook.core.accounts import DEFAULT_ACCOUNT, pool_for
        from fluxhook.store.keys import KEYS

        self.db, self.key = stack.redis(), KEYS.slots(pool_for("flux-2-pro"), DEFAULT_ACCOUNT)
        self.taken: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            for job, score in self.db.zrange(self.key, 0, -1, withscores=True):
                self.taken.setdefault(job, score)

    def __enter__(self) -> "SlotWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def trickle(stack: BenchStack, poster: Poster, users: list[str], every: float, label: str,
            task_delay: float) -> tuple[list[str], list[float], float, float]:
    """One job of each of ``users``, one every ``every`` seconds, each phase's n-th of the same task length; their ids
    once every one was accepted by BFL, when each one's POST was answered (it was in line by then), and when the first
    and the last were posted."""
    rng = random.Random("others")
    started = time.monotonic()

    def post(prompt: str, user: str) -> tuple[str, float]:
        job_id = poster.post(prompt, user)
        return job_id, time.time()

    with ThreadPoolExecutor(4) as pool:
        futures = []
        for n, user in enumerate(users):
            delay = started + n * every - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(post, f"bench end users {label} {n} {seconds(rng, task_delay)}", user))
        ids, answered = map(list, zip(*(f.result() for f in futures), strict=True))
    window = (time.time() - (time.monotonic() - started), time.time())
    db = stack.redis()

    def accepted() -> bool:
        return all(r["submitted_at"] for r in read_jobs(db, ids, ["submitted_at"]))

    _wait(f"the {label} jobs accepted by BFL", accepted)
    return ids, answered, *window


def waits(stack: BenchStack, ids: list[str]) -> list[float]:
    """Each job's seconds from its creation to BFL's acceptance of its task."""
    return [float(r["submitted_at"] or "nan") - float(r["created_at"] or "nan")
            for r in read_jobs(stack.redis(), ids, ["created_at", "submitted_at"])]


def beside_flood(stack: BenchStack, flooder: Poster, end_user: str | None, poster: Poster, users: list[str],
                 args: argparse.Namespace, label: str) -> dict:
    """``flooder`` posts ``--flood`` jobs at once (of ``end_user``), then ``users`` trickle in as ``poster``'s, the
    slots watched meanwhile; then what is left of the flood is canceled. The others' waits, the flood's turns before
    each of them, the gaps between the flood's tasks ending, and how many of its jobs were not yet at BFL."""
    rng = random.Random("flood")
    posted = time.monotonic()
    flood = flooder.many([(f"bench end users flood {n} {seconds(rng, args.task_delay)}", end_user)
                          for n in range(args.flood)])
    posted_in = time.monotonic() - posted
    with SlotWatch(stack) as watch:
        ids, answered, since, until = trickle(stack, poster, users, args.every, label, args.task_delay)
    db = stack.redis()
    read = read_jobs(db, flood, ["submitted_at", "finished_at"])
    left = [job for job, r in zip(flood, read, strict=True) if not r["submitted_at"]]
    flooder.cancel(left)
    _wait(f"the rest of the {label} flood out of line", lambda: not any(
        r["status"] == "queued" for r in read_jobs(db, left, ["status"])))
    ends = sorted(t for r in read if r["finished_at"] and since <= (t := float(r["finished_at"])) <= until)
    flood_taken = sorted(watch.taken[job] for job in flood if job in watch.taken)
    # Counted from its POST's answer: a turn given while the web was still making its job (seconds apart under load)
    # was no turn of its.
    before = [sum(1 for t in flood_taken if at < t < watch.taken.get(job, math.inf))
              for job, at in zip(ids, answered, strict=True)]
    made = [at - float(r["created_at"] or "nan") for at, r in zip(answered, read_jobs(db, ids, ["created_at"]),
                                                                    strict=True)]
    return {"waits": waits(stack, ids), "before": before, "left": len(left), "posted_in": posted_in,
            "gaps": [b - a for a, b in zip(ends, ends[1:], strict=False)], "made": made}


def make_key(stack: BenchStack, name: str, args: argparse.Namespace) -> Poster:
    made = stack.api_session().post(stack.base_url + "/v1/keys", json={
        "name": name, "requests_per_minute": 100_000, "reads_per_minute": 100_000,
        "max_queued": max(1000, args.flood * 2)}, timeout=30)
    made.raise_for_status()
    return Poster(stack, made.json()["key"])


def run(args: argparse.Namespace) -> dict:
    stack = BenchStack("end-users", log_level="WARNING", BFL_MAX_ACTIVE=str(args.slots))
    try:
        stack.start(workers=1)
        stack.sim_settings(submit_delay=args.submit_delay, task_delay=args.task_delay, max_active=args.slots * 4,
                           scene_images=False, image_format="png")
        poster = make_key(stack, "bench end users", args)
        another = make_key(stack, "bench end users, another key", args)
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

        n = args.others
        log(f"alone, slots idle: {n} jobs of {n} end users, one every {args.every:g} s")
        idle, _, _, _ = trickle(stack, poster, users[:n], args.every, "idle", args.task_delay)
        log(f"alone in its key, the slots as busy: another key posts {args.flood} jobs at once, then the trickle")
        baseline = beside_flood(stack, another, None, poster, users[n:2 * n], args, "beside another key")
        log(f"with a flooder in its key: {FLOODER} posts {args.flood} jobs at once, then the trickle")
        flooded = beside_flood(stack, poster, FLOODER, poster, users[2 * n:3 * n], args, "flooded")
        return {"without": median(counts["without"]), "named": median(counts["named"]),
                "extras": [n - w for n, w in zip(counts["named"], counts["without"], strict=True)],
                "idle": waits(stack, idle), "baseline": baseline, "flooded": flooded, "more": more}
    finally:
        stack.stop()
        stack.cleanup()


def report(args: argparse.Namespace, figures: dict) -> None:
    base, flood = figures["baseline"], figures["flooded"]
    idle, waited, alone = figures["idle"], flood["waits"], base["waits"]
    p99, alone_p99, idle_p99 = percentile(waited, 99), percentile(alone, 99), percentile(idle, 99)
    ratio = p99 / alone_p99 if alone_p99 else float("inf")
    most = max(flood["before"], default=0)
    extra = median(figures["extras"])
    gaps = flood["gaps"]
    in_flight = args.slots * args.submit_delay / (args.submit_delay + args.task_delay)
    shown = Section(
        f"the others beside {FLOODER}'s {args.flood} jobs (baseline: alone in their key beside another key's "
        f"{args.flood}, same run)",
        [Row("time to BFL p50 (creation -> accepted)", fmt(percentile(waited, 50), 2, " s"),
             fmt(percentile(alone, 50), 2, " s"), fmt(percentile(waited, 50) / percentile(alone, 50), 2, "x")),
         Row("time to BFL p99", fmt(p99, 2, " s"), fmt(alone_p99, 2, " s"), fmt(ratio, 2, "x"),
             f"<= {TARGET_RATIO:g}x alone", ratio <= TARGET_RATIO),
         Row("the flood's jobs given a slot after one of the others was in line, before it, most", str(most),
             str(max(base["before"], default=0)), target="<= 1", met=most <= 1),
         Row("  of the others with one or more before it", str(sum(1 for b in flood["before"] if b)),
             str(sum(1 for b in base["before"] if b))),
         Row("alone, slots idle: time to BFL p50 / p99 (info)",
             f"{fmt(percentile(idle, 50), 2)} / {fmt(idle_p99, 2, ' s')}", "", fmt(p99 / idle_p99, 2, "x"),
             f"{1 + math.log(100) / in_flight:.2f}x expected"),
         Row("one turn: the gap between two of the flood's tasks ending, p50 / p99",
             f"{fmt(percentile(gaps, 50), 2)} / {fmt(percentile(gaps, 99), 2, ' s')}"),
         Row("the flood's jobs not yet at BFL as the last other got there", str(flood["left"]), str(base["left"]))],
        [f"{args.others} jobs a phase, each of another end user, one every {args.every:g} s; BFL answering each "
         f"submission after {args.submit_delay:g} s, tasks of {args.task_delay:g} s, {args.slots} slots.",
         f"Each of the others was in line by its POST's answer, p50 / p99 / most "
         f"{fmt(percentile(flood['made'], 50), 2)} / {fmt(percentile(flood['made'], 99), 2)} / "
         f"{fmt(max(flood['made'], default=math.nan), 2)} s after its creation (the baseline's most "
         f"{fmt(max(base['made'], default=math.nan), 2)} s); the flood's jobs given a slot are counted from then.",
         f"The floods were posted in {flood['posted_in']:.1f} s and {base['posted_in']:.1f} s; the last row above zero "
         f"says each still held jobs in line for the whole trickle.",
         f"Beside idle slots (the ratio to it shown): each of the others takes a free slot at once, while beside any "
         f"flood it waits for one to free, at p99 about ln(100) mean gaps; the expected ratio, 1 + ln(100) / "
         f"{in_flight:g} submissions in flight, holds whatever the turns."])
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
