"""Benchmark 1, callback ingest: the real web process against a bare Flask endpoint, same gunicorn settings.

Both are started with the Procfile's gunicorn command and ``--config python:receiver.gunicorn_conf``
(receiver.buffering_worker, gthread threads; WEB_CONCURRENCY x WEB_THREADS, bound to 127.0.0.1); the baseline only swaps the app
for ``bench.bare_app``. ``wrk`` (32 connections, fixed duration) sends both byte-for-byte the
same requests: signed Ready callbacks (per-job URL and ``X-Webhook-Secret``) for jobs created
through ``POST /v1/jobs`` just before, with ``[pending] [drop]`` prompts so the simulator never
completes nor calls back by itself. Each job gets one callback (each wrk thread walks its own
share of the jobs); a share that runs out wraps around, which shows as duplicates below.

No worker runs during this benchmark: queued downloads stay in RQ's queue, where they are
counted, and neither the downloads nor the sweep take CPU from the web process (the baseline
has no such work either). The callbacks' ``result.sample`` URLs are well-formed simulator
delivery URLs that are never fetched. Runs alternate which server goes first.

References, not targets, under the same settings: the bare app plus one Redis ``INCR``, and the
bare app plus only the steps no receiver may skip (``bench.bare_app.create_steps_app``), with
and without the RQ enqueue of the download, on copies of a submitted job's record.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

from rq import Queue

from devtools.processes import free_port, wait_until
from fluxhook.core.job import new_job_id
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import KEYS

from .common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    counter,
    create_jobs,
    fmt,
    log,
    median_of_reps,
    metrics_counts,
    read_jobs,
    signed_callback,
    tree_memory,
    unfetched_sample,
    wrk,
)

CONNECTIONS = 32
WRK_THREADS = 2
LUA = Path(__file__).with_name("callbacks.lua")
MAX_POOL = 9_000  # below BFL_MAX_ACTIVE: an unused job holds a fluxhook slot
# Ingest against the bare app is shown for information: BFL's account limits keep real callback bursts far
# below either rate, so a verdict against it would grade a load no user sends.
# The reference apps with the callback's steps alone (bench/bare_app.py): name -> whether they queue the download.
STEPS_APPS = {"steps": True, "transition": False}


def run_wrk(port: int, data: Path, duration: float) -> dict:
    """One wrk run of signed callbacks against 127.0.0.1:``port`` (it stops by itself after ``duration``)."""
    return wrk(f"http://127.0.0.1:{port}", LUA, duration, CONNECTIONS, WRK_THREADS, str(data), str(WRK_THREADS))


def wait_for_aof_rewrite(db) -> None:
    """Until no AOF rewrite (a forked Redis rewriting its log) is running."""
    wait_until(lambda: not db.info("persistence")["aof_rewrite_in_progress"], timeout=120, interval=0.1,
               message="Redis's AOF rewrite to finish")


def clone_jobs(db, template: BenchJob, count: int) -> list[BenchJob]:
    """``count`` records like ``template``'s (a submitted job), written straight to Redis with new ids and task ids.

    For the reference apps only: writing them takes seconds where ``POST /v1/jobs`` takes a minute,
    and they hold no fluxhook slot, so BFL_MAX_ACTIVE does not bound their number.
    """
    store = JobStore(db, ttl=86400)
    record = store.get(template.job_id)
    clones = []
    for _ in range(count):
        clone = dataclasses.replace(record, id=new_job_id(), bfl_id=str(uuid.uuid4()))
        store.create(clone)
        clones.append(BenchJob(clone.id, clone.bfl_id))
    return clones


def write_data(stack: BenchStack, jobs: list[BenchJob], path: Path) -> None:
    with path.open("w") as out:
        for job in jobs:
            # No worker runs here, so the callback's image is never fetched.
            callback = signed_callback(stack, job, unfetched_sample(stack, job))
            path_only = "/" + callback.url.split("/", 3)[3]
            out.write(f"{path_only}\t{callback.headers['X-Webhook-Secret']}\t{callback.body.decode()}\n")


class Ingest:
    def __init__(self, args):
        self.args = args
        self.duration = args.ingest_seconds
        self.stack = BenchStack("ingest", log_level=args.log_level)
        self.unused: list[BenchJob] = []
        self.template: BenchJob | None = None
        self.memory: dict[str, float] = {}
        self.rewrites_during = 0

    def run(self) -> Section:
        args = self.args
        stack = self.stack
        with stack:
            stack.start(workers=0)
            stack.sim_settings(max_active=100_000)
            bare_port = free_port()
            stack.start_bare_app(bare_port)
            reference_port = free_port()
            stack.start_bare_app(reference_port, redis_write=True)
            steps_ports = {}
            for name, enqueue in STEPS_APPS.items():
                steps_ports[name] = free_port()
                stack.start_bare_app(steps_ports[name], app=f"create_steps_app(enqueue={enqueue})")
            web_port = int(stack.env["PORT"])
            db = stack.redis()
            queue = Queue("fluxhook", connection=stack.redis(decode=False))

            # Warm-up (discarded): both servers' threads, connections and code paths, and a first rate.
            log("ingest: warm-up")
            warm = self._pool(600)
            data = stack.var_dir / "warm.tsv"
            write_data(stack, warm, data)
            rate = run_wrk(web_port, data, 2)["rps"]
            run_wrk(bare_port, data, 2)
            run_wrk(reference_port, data, 2)
            self._settle(db)
            # A submitted job no callback will reach: the reference apps' records are copies of it.
            self.template = create_jobs(stack, 1)[0]
            steps_rates = {}
            for name, port in steps_ports.items():
                clones = clone_jobs(stack.redis(decode=False), self.template, 600)
                write_data(stack, clones, stack.var_dir / "warm-steps.tsv")
                steps_rates[name] = run_wrk(port, stack.var_dir / "warm-steps.tsv", 2)["rps"]
            self.unused = [j for j, r in zip(warm, read_jobs(db, [j.job_id for j in warm], ("status",)), strict=False)
                           if r["status"] == "submitted"]

            reps = []
            for rep in range(args.reps):
                # Enough jobs that neither wrk thread runs out of its half (threads are not evenly fast).
                size = min(MAX_POOL, int(rate * self.duration * 2.2) + 300)
                log(f"ingest rep {rep + 1}/{args.reps}: preparing {size} jobs (estimated {rate:.0f} callbacks/s)")
                pool = self._pool(size)
                data = stack.var_dir / f"rep{rep}.tsv"
                write_data(stack, pool, data)
                figures = {}
                order = ("fluxhook", "bare", "ref") if rep % 2 == 0 else ("bare", "ref", "fluxhook")
                for which in order:
                    if which == "fluxhook":
                        figures.update(self._fluxhook_run(db, queue, web_port, pool, data))
                        continue
                    run = run_wrk(bare_port if which == "bare" else reference_port, data, self.duration)
                    figures.update({f"{which}_rps": run["rps"], f"{which}_p50": run["p50_us"] / 1000,
                                    f"{which}_p99": run["p99_us"] / 1000,
                                    f"{which}_errors": run["non2xx"] + run["socket_errors"]})
                for name, port in steps_ports.items():
                    figures.update(self._steps_run(name, port, steps_rates[name]))
                    steps_rates[name] = figures[f"{name}_rps"]
                    figures[f"{name}_ratio"] = figures[f"{name}_rps"] / figures["bare_rps"]
                figures["ratio"] = figures["fh_rps"] / figures["bare_rps"]
                figures["ref_ratio"] = figures["ref_rps"] / figures["bare_rps"]
                rate = figures["fh_rps"]
                log(f"ingest rep {rep + 1}: fluxhook {figures['fh_rps']:.0f}/s p99 {figures['fh_p99']:.1f} ms, "
                    f"bare {figures['bare_rps']:.0f}/s p99 {figures['bare_p99']:.1f} ms, "
                    f"bare + Redis INCR {figures['ref_rps']:.0f}/s, "
                    f"accepted {figures['accepted']:.0f} queued {figures['queued']:.0f}")
                reps.append(figures)
            self.memory = tree_memory(stack.web.pid)
            self.memory["bare_rss"] = tree_memory(stack.extra[0].pid)["rss"]
            return self._section(reps)

    def _pool(self, size: int) -> list[BenchJob]:
        """``size`` submitted jobs that have had no callback: leftovers first, then fresh ones."""
        pool, self.unused = self.unused[:size], self.unused[size:]
        if len(pool) < size:
            pool += create_jobs(self.stack, size - len(pool))
        return pool

    def _steps_run(self, name: str, port: int, rate: float) -> dict[str, float]:
        """One run of a reference app with the callback's steps, on fresh job records; its figures."""
        stack = self.stack
        # Enough records that neither wrk thread wraps (a repeated callback takes a shorter path).
        pool = clone_jobs(stack.redis(decode=False), self.template, int(rate * self.duration * 1.6) + 300)
        data = stack.var_dir / f"{name}.tsv"
        write_data(stack, pool, data)
        wait_for_aof_rewrite(stack.redis())
        run = run_wrk(port, data, self.duration)
        moved = sum(r["status"] == "ready" for r in read_jobs(stack.redis(), [j.job_id for j in pool], ("status",)))
        return {f"{name}_rps": run["rps"], f"{name}_p99": run["p99_us"] / 1000,
                f"{name}_errors": run["non2xx"] + run["socket_errors"], f"{name}_requests": run["requests"],
                f"{name}_moved": moved}

    def _settle(self, db) -> dict[str, float]:
        """Wait until requests still in flight when wrk stopped are counted; the counters then."""
        last, stable_since = None, time.monotonic()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            counts = metrics_counts(db)
            total = counter(counts, "fluxhook_callbacks")
            if total != last:
                last, stable_since = total, time.monotonic()
            elif time.monotonic() - stable_since > 0.5:
                break
            time.sleep(0.1)
        return metrics_counts(db)

    def _fluxhook_run(self, db, queue: Queue, port: int, pool: list[BenchJob], data: Path) -> dict[str, float]:
        # Creating the jobs just before may have set off an AOF rewrite (a forked Redis rewriting its
        # log): it would take CPU from fluxhook's run only, not the bare app's.
        wait_for_aof_rewrite(db)
        base_before = db.info("persistence").get("aof_base_size")
        before = metrics_counts(db)
        queued_before = queue.count
        wrk = run_wrk(port, data, self.duration)
        persistence = db.info("persistence")
        self.rewrites_during += int(bool(persistence["aof_rewrite_in_progress"])
                                    or persistence.get("aof_base_size") != base_before)
        after = self._settle(db)
        queued = queue.count - queued_before

        def delta(**labels) -> float:
            return counter(after, "fluxhook_callbacks", **labels) - counter(before, "fluxhook_callbacks", **labels)

        accepted, duplicate, refused = delta(outcome="accepted"), delta(outcome="duplicate"), delta(outcome="refused")
        records = read_jobs(db, [j.job_id for j in pool], ("status",))
        ready = [j for j, r in zip(pool, records, strict=False) if r["status"] == "ready"]
        pipe = db.pipeline(transaction=False)
        for job in ready:
            pipe.exists(KEYS.download_lock(job.job_id))
        locks = sum(pipe.execute())
        # Jobs no callback reached go to the next repetition.
        self.unused = [j for j, r in zip(pool, records, strict=False) if r["status"] == "submitted"] + self.unused
        server_total = accepted + duplicate + refused
        return {
            "fh_rps": wrk["rps"], "fh_p50": wrk["p50_us"] / 1000, "fh_p99": wrk["p99_us"] / 1000,
            "fh_errors": wrk["non2xx"] + wrk["socket_errors"], "fh_requests": wrk["requests"],
            "accepted": accepted, "duplicate": duplicate, "refused": refused, "queued": queued,
            "ready_jobs": len(ready), "locks": locks,
            # Requests wrk had sent but not seen answered when its time was up are still counted by the server.
            "unanswered": server_total - wrk["requests"],
            "one_each": float(accepted == queued == len(ready) == locks and refused == 0
                              and wrk["non2xx"] == 0 and wrk["socket_errors"] == 0
                              and 0 <= server_total - wrk["requests"] <= CONNECTIONS),
        }

    def _section(self, reps: list[dict]) -> Section:
        m = median_of_reps(reps)
        n = len(reps)
        ok = all(r["one_each"] for r in reps)
        section = Section("1. callback ingest")
        section.rows = [
            Row("ingest req/s (32 conns)", fmt(m["fh_rps"], 0), fmt(m["bare_rps"], 0), fmt(m["ratio"], 2), "(info)"),
            Row("ingest latency p50, ms", fmt(m["fh_p50"], 1), fmt(m["bare_p50"], 1),
                fmt(m["fh_p50"] / m["bare_p50"], 2)),
            Row("ingest latency p99, ms", fmt(m["fh_p99"], 1), fmt(m["bare_p99"], 1),
                fmt(m["fh_p99"] / m["bare_p99"], 2), "(info)"),
            Row("ingest: accepted = queued downloads, 0 dropped",
                " / ".join(f"{r['accepted']:.0f}={r['queued']:.0f}" for r in reps),
                f"{sum(r['bare_errors'] for r in reps):.0f} errors", "", "all, 0 errors", ok),
            Row("reference: bare + one Redis INCR, req/s", fmt(m["ref_rps"], 0), fmt(m["bare_rps"], 0),
                fmt(m["ref_ratio"], 2), "(info)"),
            Row("reference: bare + one Redis INCR, p99 ms", fmt(m["ref_p99"], 1), fmt(m["bare_p99"], 1),
                fmt(m["ref_p99"] / m["bare_p99"], 2), "(info)"),
            Row("reference: bare + the callback's steps, req/s", fmt(m["steps_rps"], 0), fmt(m["bare_rps"], 0),
                fmt(m["steps_ratio"], 2), "(info)"),
            Row("reference: the same without the RQ enqueue, req/s", fmt(m["transition_rps"], 0),
                fmt(m["bare_rps"], 0), fmt(m["transition_ratio"], 2), "(info)"),
        ]
        section.notes = [
            "the rates are information, not a target: BFL lets an account run 24 tasks at once, so a real burst "
            "of callbacks is two orders of magnitude below them; what users feel is that no callback is lost "
            "(the target below) and that callbacks stay fast while BFL hangs (bulkheads).",
            f"wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{self.duration:g}s, {n} rep(s), medians; ratio = median of the "
            "per-rep paired ratios; runs alternate which server goes first; a 2 s warm-up of each is discarded.",
            "both servers: the Procfile's gunicorn with --config python:receiver.gunicorn_conf (the buffering gthread worker, "
            "WEB_CONCURRENCY x WEB_THREADS = 2 x 4 by default, a socket per worker), bound to 127.0.0.1, "
            f"LOG_LEVEL={self.args.log_level}; "
            "the baseline app (bench/bare_app.py) only reads the body and answers 200.",
            "every request is a valid signed Ready callback (per-job URL + X-Webhook-Secret) for a job created "
            "by POST /v1/jobs ([pending] [drop]: the simulator never calls back); no worker runs, so queued "
            "downloads stay in RQ and are counted there.",
            "nothing dropped = per rep: wrk saw 0 non-2xx and 0 socket errors; fluxhook_callbacks_total "
            "accepted == new RQ downloads == jobs now ready == their fh:download locks; 0 refused; and the "
            "server counted every request wrk saw answered (plus at most the 32 in flight at wrk's stop).",
            "reference (not a target): the bare app plus one INCR on the same Redis per request, started the "
            "same way (bench/bare_app.py, redis_write=True): what one round trip to Redis costs before any "
            "work of fluxhook's own; it answers 200 whatever Redis says.",
            "references with the callback's steps (not targets; bench/bare_app.py create_steps_app, same gunicorn "
            "settings, each run after the three above): the bare app plus fluxhook's own functions for what no "
            "receiver can skip: the URL token, the secret, parsing, and the one atomic transition to ready that "
            "also takes the download's lock and queues its RQ task (accept_ready); the second the same transition "
            "without the download's lock and task. "
            "Nothing else of fluxhook's receiver runs in them: request hooks, its log line, the timeline event, "
            "metrics. Their jobs are copies of a submitted job's record written straight to Redis (no slots). "
            "Per rep, req/s and p99 ms, jobs moved to ready of requests answered: " + "; ".join(
                ", ".join(f"{name} {r[f'{name}_rps']:.0f} {r[f'{name}_p99']:.1f} ms {r[f'{name}_moved']:.0f} of "
                          f"{r[f'{name}_requests']:.0f} ({r[f'{name}_errors']:.0f} errors)" for name in STEPS_APPS)
                for r in reps),
            "per rep, fluxhook vs bare req/s and p99 ms: " + "; ".join(
                f"{r['fh_rps']:.0f} vs {r['bare_rps']:.0f}, {r['fh_p99']:.1f} vs {r['bare_p99']:.1f}" for r in reps)
            + "; bare + one Redis INCR req/s (non-2xx + socket errors): " + ", ".join(
                f"{r['ref_rps']:.0f} ({r['ref_errors']:.0f})" for r in reps),
            "per rep (fluxhook): " + "; ".join(
                f"{r['fh_requests']:.0f} answered, accepted {r['accepted']:.0f}, duplicate {r['duplicate']:.0f} "
                f"(a wrk thread wrapped), refused {r['refused']:.0f}, queued {r['queued']:.0f}, "
                f"non-2xx+socket errors {r['fh_errors']:.0f}, in flight at stop {r['unanswered']:.0f}" for r in reps),
            "wrk runs on the same 2 cores as the servers; its own ceiling is well above these rates "
            f"(it drove the bare app at {max(r['bare_rps'] for r in reps):.0f} req/s).",
            "each fluxhook run starts once no AOF rewrite of Redis is running (creating the rep's jobs can set "
            f"one off); runs during which one started anyway: {self.rewrites_during} of {n}.",
        ]
        return section


def run(args) -> tuple[Section, Ingest]:
    bench = Ingest(args)
    return bench.run(), bench
