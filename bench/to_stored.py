"""Benchmark 2, callback -> stored: fluxhook against the direct-download floor and BFL's naive poller.

fluxhook: N jobs created with ``POST /v1/jobs`` (``[pending] [drop]``: the simulator neither
completes them nor calls back by itself). The bench completes each task through the
simulator's control API, reads its delivery URL with one ``get_result`` and fetches the
image once, so the simulator has rendered and cached it (rendering a 1 MB PNG costs it about
50 ms, which is the simulator's cost, not BFL's nor fluxhook's). Then ``--concurrency``
threads send the signed Ready callbacks themselves, each waiting for its job to turn
``stored`` before sending the next, so exactly that many are in flight, as many as there are
worker processes. A job's time is the stored record's ``completed_at`` (written by the worker)
minus the moment the callback was sent (both wall clocks of this machine).

Floor: the same URLs downloaded with ``requests`` by the same number of threads, keep-alive
session per thread, timed from request to last byte.

Naive poller (BFL's guide): submit a task, then ``sleep(0.5)``, ``get_result``, repeat until
Ready, then download the sample; as many loops at once as the concurrency. Its tasks complete
``--task-delay`` s plus a uniform 0-0.5 s after submission (a bench thread completes them), so
completions fall at every phase of the poll loop. Time-to-image = from the task's completion
(the simulator's ``completed_at``) to the poll that saw Ready, plus the image's download timed on
a second fetch (the first one makes the simulator render the image, which real BFL has done
before it says Ready). Calls per job = the submission + its polls, counted by the poller and
cross-checked with the simulator.
"""

from __future__ import annotations

import queue as queue_mod
import random
import threading
import time

import requests

from devtools.stack import SIMULATOR_KEY
from fluxhook.store.keys import KEYS

from .common import (
    BenchJob,
    BenchStack,
    Row,
    Section,
    callback_times,
    complete_and_sample,
    create_jobs,
    fetch,
    fmt,
    log,
    median_of_reps,
    percentile,
    read_jobs,
    signed_callback,
    stored_downloads,
    submit_sim_task,
    thread_map,
    timelines,
    tree_memory,
)

TARGET_ABOVE_FLOOR_MS = 30.0
POLL_INTERVAL = 0.5
WAIT_INTERVAL = 0.003


def latency_figures(prefix: str, values_ms: list[float]) -> dict[str, float]:
    return {f"{prefix}_p50": percentile(values_ms, 50), f"{prefix}_p95": percentile(values_ms, 95),
            f"{prefix}_p99": percentile(values_ms, 99)}


class ToStored:
    def __init__(self, args):
        self.args = args
        self.stack = BenchStack("to-stored", log_level=args.log_level)
        self.concurrency = args.concurrency
        self.memory: dict[str, float] = {}
        self.worker_memory: list[dict[str, float]] = []
        self.calls: dict[str, float] = {}
        self.poller_calls = float("nan")

    # -- one repetition's parts

    def prepare_jobs(self, count: int) -> tuple[list[BenchJob], list[str]]:
        stack = self.stack
        jobs = create_jobs(stack, count)
        samples = thread_map(lambda s, job: complete_and_sample(s, stack.sim_base, job.bfl_id), jobs, 4)
        thread_map(fetch, samples, 2)  # the simulator renders each image once, now
        return jobs, samples

    def fluxhook_run(self, jobs: list[BenchJob], samples: list[str]) -> dict[str, float]:
        stack = self.stack
        db = stack.redis()
        work: queue_mod.Queue = queue_mod.Queue()
        for item in zip(jobs, samples, strict=False):
            work.put(item)
        sent_at: dict[str, float] = {}
        ack_ms: list[float] = []
        errors: list[str] = []

        def sender() -> None:
            session = requests.Session()
            while True:
                try:
                    job, sample = work.get_nowait()
                except queue_mod.Empty:
                    return
                callback = signed_callback(stack, job, sample)
                key = KEYS.job(job.job_id)
                sent_at[job.job_id] = time.time()
                started = time.perf_counter()
                response = session.post(callback.url, data=callback.body, headers=callback.headers, timeout=30)
                ack_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200 or response.json().get("outcome") != "download_queued":
                    errors.append(f"{response.status_code} {response.text[:120]}")
                    continue
                deadline = time.monotonic() + 60
                while db.hget(key, "status") not in ("stored", "failed", "expired") and time.monotonic() < deadline:
                    time.sleep(WAIT_INTERVAL)

        threads = [threading.Thread(target=sender) for _ in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"callbacks not accepted: {errors[:3]}")
        records = read_jobs(db, [j.job_id for j in jobs], ("status", "completed_at", "polls"))
        bad = [r["status"] for r in records if r["status"] != "stored"]
        if bad:
            raise RuntimeError(f"{len(bad)} jobs did not end stored: {bad[:5]}")
        to_stored = [(float(r["completed_at"]) - sent_at[j.job_id]) * 1000 for j, r in zip(jobs, records, strict=False)]
        figures = latency_figures("fh", to_stored)
        # Where the time goes, from each job's timeline: the Ready callback's entry (its download queued in the same
        # request, just after) and the download's (RQ keeps no record of a task that succeeded).
        ids = [job.job_id for job in jobs]
        read = timelines(db, ids)
        downloads, called = stored_downloads(ids, read), callback_times(ids, read)
        parts: dict[str, list[float]] = {"enqueued": [], "waited": [], "ran": []}
        for job, record, download, ready in zip(jobs, records, downloads, called, strict=True):
            parts["enqueued"].append((ready - sent_at[job.job_id]) * 1000)
            parts["waited"].append((download.started - ready) * 1000)
            parts["ran"].append((float(record["completed_at"]) - download.started) * 1000)
        figures.update({f"fh_{name}": percentile(values, 50) for name, values in parts.items()})
        figures["fh_ack_p50"] = percentile(ack_ms, 50)
        figures["fh_record_polls"] = sum(int(r["polls"] or 0) for r in records) / len(jobs)
        return figures

    def floor_run(self, samples: list[str]) -> dict[str, float]:
        times: list[float] = []
        lock = threading.Lock()

        def download(session: requests.Session, url: str) -> None:
            started = time.perf_counter()
            fetch(session, url)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                times.append(elapsed)

        thread_map(download, samples, self.concurrency)
        return latency_figures("floor", times)

    def poller_run(self, count: int, rep: int) -> dict[str, float]:
        sim = self.stack.sim_base
        delay = self.args.task_delay
        headers = {"x-key": SIMULATOR_KEY}
        results: list[dict] = []
        lock = threading.Lock()
        rng = random.Random(rep)
        # BFL finishes at no fixed phase of the poll loop: a completion time in step with the 0.5 s
        # polls would make every poll land at the same point of the task.
        jitter = [rng.uniform(0, POLL_INTERVAL) for _ in range(count)]

        def complete(task_id: str) -> None:
            requests.post(f"{sim}/_sim/tasks/{task_id}/complete", json={"outcome": "ready"}, timeout=30)

        def one(session: requests.Session, n: int) -> None:
            submitted = submit_sim_task(session, sim, f"[pending] naive poller {rep}-{n}")
            task_id, polling_url = submitted["id"], submitted["polling_url"]
            timer = threading.Timer(delay + jitter[n], complete, args=(task_id,))
            timer.start()
            polls = 0
            while True:  # BFL's guide: sleep 0.5 s, get_result, until Ready
                time.sleep(POLL_INTERVAL)
                result = session.get(polling_url, headers=headers, timeout=30).json()
                polls += 1
                if result["status"] == "Ready":
                    break
                if result["status"] != "Pending":
                    raise RuntimeError(f"naive poller: task ended {result['status']}")
            ready_seen = time.time()
            sample = result["result"]["sample"]
            fetch(session, sample)  # the simulator renders the image on this first fetch: not BFL's cost
            started = time.perf_counter()
            fetch(session, sample)  # the download as from a real delivery host, timed
            download = time.perf_counter() - started
            timer.join()
            task = session.get(f"{sim}/_sim/tasks/{task_id}", timeout=30).json()
            with lock:
                results.append({"task": task_id, "polls": polls, "lag": ready_seen - task["completed_at"],
                                "download": download, "sim_polls": task["polls"]})

        thread_map(one, range(count), self.concurrency)
        client_polls = sum(r["polls"] for r in results)
        times = [(r["lag"] + r["download"]) * 1000 for r in results]
        figures = latency_figures("poller", times)
        figures["poller_calls"] = 1 + client_polls / len(results)
        figures["poller_polls_match"] = float(sum(r["sim_polls"] for r in results) == client_polls)
        figures["poller_lag_p50"] = percentile([r["lag"] * 1000 for r in results], 50)
        figures["poller_download_p50"] = percentile([r["download"] * 1000 for r in results], 50)
        return figures

    # -- the benchmark

    def run(self) -> Section:
        args, stack = self.args, self.stack
        with stack:
            stack.start(workers=self.concurrency)
            stack.sim_settings(max_active=100_000, image_bytes=args.image_bytes, url_ttl=7200,
                               task_delay=args.task_delay)
            log("to-stored: warm-up")
            jobs, samples = self.prepare_jobs(2 * self.concurrency)
            self.fluxhook_run(jobs, samples)
            self.floor_run(samples)
            reps = []
            all_jobs: list[BenchJob] = []
            for rep in range(args.reps):
                log(f"to-stored rep {rep + 1}/{args.reps}: {args.jobs} jobs")
                jobs, samples = self.prepare_jobs(args.jobs)
                all_jobs += jobs
                figures: dict[str, float] = {}
                parts = [lambda figures=figures, jobs=jobs, samples=samples: figures.update(self.fluxhook_run(jobs, samples)),
                         lambda figures=figures, samples=samples: figures.update(self.floor_run(samples)),
                         lambda figures=figures, rep=rep: figures.update(self.poller_run(args.jobs, rep))]
                for part in parts[rep % 3:] + parts[:rep % 3]:  # rotate which goes first
                    part()
                figures["ratio_floor"] = figures["fh_p50"] / figures["floor_p50"]
                figures["above_floor"] = figures["fh_p50"] - figures["floor_p50"]
                figures["ratio_poller"] = figures["fh_p50"] / figures["poller_p50"]
                log(f"to-stored rep {rep + 1}: fluxhook p50 {figures['fh_p50']:.1f} ms, floor p50 "
                    f"{figures['floor_p50']:.1f} ms, poller p50 {figures['poller_p50']:.1f} ms")
                reps.append(figures)
            # BFL calls per fluxhook job, from the simulator: its submission plus every get_result for its
            # task, minus the bench's own one (complete_and_sample).
            polls = self.stack.sim_stats()["polls"]
            fh_polls = [polls.get(j.bfl_id, 0) - 1 for j in all_jobs]
            self.calls = {"fh_calls": 1 + sum(fh_polls) / len(fh_polls), "fh_polled_jobs": sum(p > 0 for p in fh_polls),
                          "fh_jobs": len(fh_polls)}
            self.memory = tree_memory(stack.web.pid)
            self.worker_memory = [tree_memory(w.pid) for w in stack.workers]
            return self._section(reps)

    def _section(self, reps: list[dict]) -> Section:
        m = median_of_reps(reps)
        self.poller_calls = m["poller_calls"]
        c = self.calls
        section = Section("2. callback -> stored")
        section.rows = [
            Row("callback->stored p50, ms (vs floor)", fmt(m["fh_p50"]), fmt(m["floor_p50"]), fmt(m["ratio_floor"], 2),
                f"<= floor+{TARGET_ABOVE_FLOOR_MS:g}", m["above_floor"] <= TARGET_ABOVE_FLOOR_MS),
            Row("callback->stored p95, ms (vs floor)", fmt(m["fh_p95"]), fmt(m["floor_p95"]),
                fmt(m["fh_p95"] / m["floor_p95"], 2)),
            Row("callback->stored p99, ms (vs floor)", fmt(m["fh_p99"]), fmt(m["floor_p99"]),
                fmt(m["fh_p99"] / m["floor_p99"], 2)),
            Row("  fluxhook p50 above floor p50, ms", fmt(m["above_floor"]), "", "", f"<= {TARGET_ABOVE_FLOOR_MS:g}",
                m["above_floor"] <= TARGET_ABOVE_FLOOR_MS),
            Row("callback->stored p50 vs poller time-to-image p50, ms", fmt(m["fh_p50"]), fmt(m["poller_p50"]),
                fmt(m["ratio_poller"], 2), "< poller", m["fh_p50"] < m["poller_p50"]),
            Row("  naive poller time-to-image p95 / p99, ms", "", f"{fmt(m['poller_p95'])} / {fmt(m['poller_p99'])}"),
            Row("polls per job, callbacks arriving (vs poller)", fmt(c["fh_calls"] - 1, 2), fmt(m["poller_calls"] - 1, 2),
                "", "0", c["fh_polled_jobs"] == 0),
        ]
        section.notes = [
            f"{self.args.jobs} jobs per rep, {len(reps)} rep(s), medians of per-rep percentiles; images "
            f"{self.args.image_bytes / 1e6:g} MB PNG; concurrency {self.concurrency} (callback senders = worker "
            f"processes = floor threads = poller loops); the three runs rotate which goes first.",
            "fluxhook: time from the callback POST being sent to the worker writing status stored (its "
            "completed_at); the bench waits for each job (Redis, not HTTP) before sending the next one.",
            "per rep p50, ms (fluxhook / floor / poller): " + "; ".join(
                f"{r['fh_p50']:.1f} / {r['floor_p50']:.1f} / {r['poller_p50']:.1f}" for r in reps),
            f"where fluxhook's time goes (medians, ms): callback sent -> Ready recorded and its download queued "
            f"{fmt(m['fh_enqueued'])}, queued -> a worker starts the download {fmt(m['fh_waited'])}, started -> job "
            f"stored {fmt(m['fh_ran'])}.",
            f"callback acknowledged (HTTP round trip) p50 {fmt(m['fh_ack_p50'])} ms; polls on fluxhook's job records: "
            f"{fmt(m['fh_record_polls'], 2)} per job; BFL calls per fluxhook job counted by the simulator: "
            f"{fmt(c['fh_calls'], 2)} ({c['fh_polled_jobs']} of {c['fh_jobs']} jobs polled at all).",
            f"naive poller: tasks complete {self.args.task_delay:g} s + U(0, {POLL_INTERVAL:g}) s after submission, "
            f"poll every {POLL_INTERVAL:g} s after a first sleep; time-to-image = BFL's completed_at -> the poll that "
            f"saw Ready answered (p50 {fmt(m['poller_lag_p50'])} ms) + the image download (p50 "
            f"{fmt(m['poller_download_p50'])} ms, timed on a second fetch: the simulator renders an image on its first "
            f"fetch, a cost real BFL does not have); its polls counted by the simulator match its own count in "
            f"{sum(r['poller_polls_match'] for r in reps):.0f} of {len(reps)} rep(s).",
        ]
        return section


def run(args) -> tuple[Section, ToStored]:
    bench = ToStored(args)
    return bench.run(), bench
