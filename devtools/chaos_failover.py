"""Redis failover chaos (``make chaos-failover``): the primary SIGKILLed, and switched over by the sentinels on
request, under load, nothing acknowledged lost.

    CHAOS_MINUTES=3 CHAOS_SEED=1 CHAOS_REPLICAS=2 CHAOS_DISKLESS_SYNC_DELAY=0 CHAOS_MIN_REPLICAS="1 0" \
        .venv/bin/python -m devtools.chaos_failover

Two runs, the same seed and kill schedule: the first with ``REDIS_MIN_REPLICAS=1``, the second with 0
(CHAOS_MIN_REPLICAS names the runs). Each runs the Procfile's web (gunicorn, 2 processes) and 2 workers
against devtools.replicated_redis (a primary, CHAOS_REPLICAS replicas, by default 2, the shape
docs/operating.md recommends, and three sentinels; replication slowed about 200 ms by a relay so the
window is wide; ``repl-diskless-sync-delay`` CHAOS_DISKLESS_SYNC_DELAY, by default 0 as recommended too,
empty for the server's own) through ``REDIS_SENTINELS``, and the BFL simulator (answering submissions
after 1 s, 1 s tasks, some callbacks sent twice). For CHAOS_MINUTES, 8 apps submit with
Idempotency-Keys (fluxhook.client, which retries 503s), an admin creates and revokes app keys, a reader
reads jobs; every 20-40 s the primary fails over: twice SIGKILLed (the sentinels promote a replica, the
killed node comes back as a replica), then once switched over as planned (``SENTINEL FAILOVER``: nothing
killed, the old primary goes on taking the writes of the clients still connected to it until the
sentinels make it a replica), and so on, at least 5 kills and 2 planned failovers (the run goes on until
there were). Then the failovers stop and every acknowledged job is waited for until terminal.

It prints both runs side by side: jobs acknowledged (202), found afterwards, lost, never terminal,
sent to BFL twice (the simulator's tasks per Idempotency-Key; each listed in the run's
sent-twice.json) or stored twice, key changes acknowledged against those that held, and per kill
the seconds writes were unavailable (from the kill until a probe's first 202) beside the sentinels'
own failover time and the new primary's first replica online. The planned failovers have lines of
their own: the jobs acknowledged during them (from 5 s before the request to the old primary's
return as a synced replica) and in the 10 s after, how many of those were lost, the requests to BFL
first sent in those windows and sent again, and the seconds writes were unavailable (a probe
submitting from the request: the longest stretch without a 202, from the last one before a refusal
to the next). Every probe's answers, in order and timed from the kill or the request, are printed
with each failover and kept in the run's failovers.json; the jobs lost, each with its 202's time, in
lost.json. It counts the submissions answered ``409 idempotency_key_in_use`` (all, from the web's log, and those to
the probes): a request refused in a switch leaves its key free, so a retry is never answered 409 for it. It exits 1
when the ``REDIS_MIN_REPLICAS=1`` run lost a job or a key change, did a job twice, left one never terminal, or
answered such a 409.
Everything stays on 127.0.0.1; logs are kept in the directory printed first.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import requests
from redis.sentinel import Sentinel

from devtools.processes import free_port, python, redis_server_binary, start_process
from devtools.replicated_redis import ReplicatedRedis
from devtools.soak import Soak, logged_requests
from devtools.stack import SIMULATOR_KEY
from fluxhook import client as fluxhook_client
from fluxhook.store.keys import KEYS

CLIENTS = 8
KILL_GAP = (20.0, 40.0)
MIN_KILLS = 5
MIN_PLANNED = 2
# Every third failover is planned: kill, kill, planned, kill, kill, planned, kill...
PLANNED_EVERY = 3
# A job is counted with a planned failover when acknowledged (or, for one sent to BFL twice, first
# sent) from WINDOW_BEFORE s before the request until the old primary is back as a replica (during),
# or in the WINDOW_AFTER s after that (after).
WINDOW_BEFORE = 5.0
WINDOW_AFTER = 10.0
PROBE_LIMIT = 60.0  # a failover that keeps writes away longer is reported as this
DRAIN_SECONDS = 300
# The load's acknowledged jobs should all be stored this soon after it ends (docs/architecture.md: the pipeline keeps up).
STORED_WITHIN = 60.0
# How long BFL takes to answer a submission, as the real one does.
SUBMIT_DELAY = 1.0
MODEL = "flux-2-pro"
KEY_IN_PROMPT = re.compile(r"chaos(?: probe)? ([0-9a-f]{32})")


def failover_schedule(minutes: float, seed: int) -> list[tuple[float, str]]:
    """Seconds from the start at which the primary fails over, and how ("kill" or "planned"): every 20-40 s,
    every PLANNED_EVERY-th one planned, at least MIN_KILLS kills and MIN_PLANNED planned ones."""
    rng, times = random.Random(seed), []

    def enough(n: int) -> bool:
        planned = n // PLANNED_EVERY
        return n - planned >= MIN_KILLS and planned >= MIN_PLANNED

    while not times or times[-1] + KILL_GAP[0] < minutes * 60 or not enough(len(times)):
        times.append((times[-1] if times else 0.0) + rng.uniform(*KILL_GAP))
    kept = [t for n, t in enumerate(times) if t < minutes * 60 or not enough(n)]
    return [(t, "planned" if n % PLANNED_EVERY == PLANNED_EVERY - 1 else "kill") for n, t in enumerate(kept)]


@dataclass
class Failover:
    at: float  # seconds from the start of the load
    sentinels: float  # kill (or request) -> all three sentinels name a new master answering ROLE master
    attached: float | None = None  # kill (or request) -> that new master has a replica online (WAIT 1 can pass)
    unavailable: float | None = None  # kill -> first 202; planned: the longest stretch without a 202
    restart: float | None = None  # the old primary back as a synced replica (restarted, or demoted)
    kind: str = "kill"  # or "planned" (SENTINEL FAILOVER)
    began: float = 0.0  # monotonic: the kill, or the request
    back: float | None = None  # monotonic: the old primary a synced replica again


class FailoverRun(Soak):
    """One run. Soak's process handling is reused (_start_service, _start, _web_answers, _web_answers_logged, close):
    only the Redis, the faults and the load differ, so Soak.__init__ is not."""

    def __init__(self, minutes: float, seed: int, min_replicas: int, var: Path, replicas: int,
                 diskless_sync_delay: int | None):
        self.minutes, self.seed, self.min_replicas, self.var = minutes, seed, min_replicas, var
        self.tmpfs = False
        self.redis = ReplicatedRedis(directory=str(self._dir("redis")), replicas=replicas,
                                     diskless_sync_delay=diskless_sync_delay).start()
        sim_port = free_port()
        # The simulator with its tasks' prompts readable: BFL submissions per Idempotency-Key.
        self.simulator = start_process([python(), "-m", "devtools.chaos_failover", "--simulator", "--host", "127.0.0.1",
                                        "--port", str(sim_port), "--api-key", SIMULATOR_KEY, "--task-delay", "1.0"],
                                       dict(os.environ), ready_line="simulator listening",
                                       log_path=str(self.var / "simulator.log"))
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        # BFL answers a submission after about a second: the window between its answer and our record of it.
        requests.post(f"{self.sim_url}/_sim/settings", json={"submit_delay": SUBMIT_DELAY}, timeout=10).raise_for_status()
        self._start_service(self.redis.env(), self._dir("images"), sim_port, REDIS_MIN_REPLICAS=str(min_replicas))
        self.admin = requests.Session()
        self.admin.headers["Authorization"] = f"Bearer {self.token}"
        self.acknowledged: dict[str, str] = {}  # Idempotency-Key -> job id, for every 202
        self.unanswered: set[str] = set()  # jobs the drain last saw submitted with no BFL id
        self.acknowledged_at: dict[str, float] = {}  # Idempotency-Key -> monotonic time of its 202
        self.submit_errors: collections.Counter = collections.Counter()
        self.keys_created: dict[str, str] = {}  # key id -> secret, for every 201
        self.keys_revoked: set[str] = set()  # for every 204
        self.key_errors: collections.Counter = collections.Counter()
        self.reads: collections.Counter = collections.Counter()
        self.failovers: list[Failover] = []
        self.answers: list[list[tuple[float, float, str]]] = []  # per failover, its probe's (sent, answered, what)
        self.faults: collections.Counter = collections.Counter()
        self.stop = threading.Event()
        self.started = time.monotonic()

    # -- the load

    def submit(self, n: int) -> None:
        """An app submitting a job every 1-3 s, each with its own Idempotency-Key."""
        rng = random.Random(self.seed * 100 + n)
        with fluxhook_client.Client(self.base_url, self.token, timeout=(3, 30), retries=8) as app:
            while not self.stop.is_set():
                key = uuid.uuid4().hex
                marker = "[dup] " if rng.random() < 0.1 else ""  # a callback sent twice, across failovers too
                try:
                    job = app.submit(MODEL, {"prompt": f"{marker}chaos {key}"}, idempotency_key=key)
                    self._acknowledge(key, job.id)
                except fluxhook_client.APIError as exc:
                    self.submit_errors[exc.code] += 1
                self.stop.wait(rng.uniform(1.0, 3.0))

    def manage_keys(self) -> None:
        """An admin creating an app key, or revoking one, every 3-8 s."""
        rng = random.Random(self.seed * 100 + 99)
        with fluxhook_client.Client(self.base_url, self.token, timeout=(3, 30), retries=8) as admin:
            while not self.stop.wait(rng.uniform(3.0, 8.0)):
                live = sorted(set(self.keys_created) - self.keys_revoked)
                try:
                    if len(live) < 2 or rng.random() < 0.6:
                        key = admin.create_key(f"chaos-{uuid.uuid4().hex[:8]}")
                        self.keys_created[key["id"]] = key["key"]
                    else:
                        key_id = rng.choice(live)
                        admin.revoke_key(key_id)
                        self.keys_revoked.add(key_id)
                except fluxhook_client.APIError as exc:
                    self.key_errors[exc.code] += 1

    def read(self) -> None:
        """A reader of acknowledged jobs and of the job list, without the client's retries: every answer counts."""
        rng = random.Random(self.seed * 100 + 98)
        while not self.stop.wait(rng.uniform(0.2, 0.5)):
            jobs = list(self.acknowledged.values())
            path = f"/v1/jobs/{rng.choice(jobs)}" if jobs and rng.random() < 0.8 else "/v1/jobs?limit=20"
            try:
                self.reads[self.admin.get(self.base_url + path, timeout=(3, 10)).status_code] += 1
            except requests.RequestException:
                self.reads["no answer"] += 1

    # -- the faults

    def _acknowledge(self, key: str, job_id: str) -> None:
        self.acknowledged_at[key] = time.monotonic()
        self.acknowledged[key] = job_id

    def chaos(self) -> None:
        """The failovers on schedule: the primary SIGKILLed, the sentinels' failover, the killed node back as a
        replica; or SENTINEL FAILOVER, and the sentinels making the old primary a replica."""
        for at, kind in failover_schedule(self.minutes, self.seed):
            if self.stop.wait(max(0.0, self.started + at - time.monotonic())):
                return
            old = self.redis.primary_port()
            began = self.redis.kill_primary() if kind == "kill" else self.redis.planned_failover()
            failover = Failover(at=round(began - self.started, 1), sentinels=0.0, kind=kind, began=began)
            promoted, settled = threading.Event(), threading.Event()
            answers: list[tuple[float, float, str]] = []
            self.answers.append(answers)
            probe = threading.Thread(target=self.probe if kind == "kill" else self.probe_planned,
                                     args=(failover, began, answers) if kind == "kill"
                                     else (failover, began, answers, promoted, settled))
            probe.start()
            try:
                failover.sentinels = self.redis.wait_for_failover(old, timeout=30, since=began)
                promoted.set()
                attached = threading.Thread(target=self._attached, args=(failover, began))
                attached.start()
                if kind == "kill":
                    # Straight away: with REDIS_MIN_REPLICAS=1 the new primary takes no write until it has a replica.
                    restarting = time.monotonic()
                    failover.restart = self.redis.restart_killed()
                    failover.back = restarting + failover.restart
                else:
                    failover.restart = self.redis.wait_demoted(since=began, synced=settled.set)
                    failover.back = began + failover.restart
            except Exception as exc:  # the topology itself failed: no more failovers, the rest is still reported
                self.faults[f"{kind} failover failed: {type(exc).__name__}: {exc}"] += 1
                settled.set()
                probe.join()
                self.failovers.append(failover)
                return
            settled.set()
            probe.join()
            attached.join()
            self.failovers.append(failover)
            print(f"  failover {len(self.failovers)} ({kind}) at {failover.at:.0f} s: sentinels {failover.sentinels:.1f} s, "
                  f"a replica online {_seconds(failover.attached)}, writes unavailable {_seconds(failover.unavailable)}"
                  f"\n    {_answers_line(answers)}", flush=True)
        (self.var / "failovers.json").write_text(json.dumps(
            [{**vars(f), "answers": a} for f, a in zip(self.failovers, self.answers, strict=False)], indent=1))

    def _attached(self, failover: Failover, began: float) -> None:
        try:
            failover.attached = self.redis.wait_attached(since=began, timeout=PROBE_LIMIT)
        except TimeoutError:
            pass

    def _post_probe(self, key: str, began: float, answers: list) -> requests.Response | None:
        """One probe submission, its answer noted in ``answers`` (sent and answered, s from ``began``, and what)."""
        sent = time.monotonic()
        try:
            answer = self.admin.post(self.base_url + "/v1/jobs", timeout=(1, 5), headers={"Idempotency-Key": key},
                                     json={"model": MODEL, "input": {"prompt": f"chaos probe {key}"}})
            what = str(answer.status_code)
            if answer.status_code >= 400:
                error = (answer.json().get("error") or {}) if answer.headers.get("Content-Type", "").startswith(
                    "application/json") else {}
                detail = re.search(r"\(\d+ of \d+, \d+ attached\)|failed over|sentinels are replacing",
                                   error.get("message", ""))
                what += f" {error.get('code', '?')}" + (f" {detail.group(0)}" if detail else "")
        except requests.RequestException as exc:
            answer, what = None, f"no answer ({type(exc).__name__})"
        answers.append((round(sent - began, 2), round(time.monotonic() - began, 2), what))
        return answer

    def probe(self, failover: Failover, killed_at: float, answers: list) -> None:
        """Submit every 0.25 s from the kill until a 202 (one Idempotency-Key, as a retrying app would)."""
        key = uuid.uuid4().hex
        while time.monotonic() - killed_at < PROBE_LIMIT:
            answer = self._post_probe(key, killed_at, answers)
            if answer is not None:
                if answer.status_code == 202:
                    failover.unavailable = time.monotonic() - killed_at
                    self._acknowledge(key, answer.json()["id"])
                    return
            time.sleep(0.25)

    def probe_planned(self, failover: Failover, asked_at: float, answers: list, promoted: threading.Event,
                      settled: threading.Event) -> None:
        """Submit from the request on: every 0.25 s while refused (one Idempotency-Key, as a retrying app
        would), every second while acknowledged (a new key each time). Writes go on until the switch, so
        what is unavailable is the longest stretch from the last 202 before a refusal to the next 202.
        Done at a 202 after a refusal seen once the sentinels switched, or after the old primary is a
        replica again."""
        key, last_202, refused_since, refused_after_switch = uuid.uuid4().hex, asked_at, None, False
        longest = 0.0
        while time.monotonic() - asked_at < PROBE_LIMIT:
            answer = self._post_probe(key, asked_at, answers)
            acknowledged = answer is not None and answer.status_code == 202
            now = time.monotonic()
            if acknowledged:
                self._acknowledge(key, answer.json()["id"])
                if refused_since is not None:
                    longest = max(longest, now - last_202)
                last_202, refused_since, key = now, None, uuid.uuid4().hex
                if refused_after_switch or settled.is_set():
                    failover.unavailable = longest
                    return
                time.sleep(1.0)
                continue
            refused_since = refused_since or now
            refused_after_switch = refused_after_switch or promoted.is_set()
            time.sleep(0.25)

    # -- the run

    def run(self) -> dict:
        threads = [threading.Thread(target=self.submit, args=(n,)) for n in range(CLIENTS)]
        threads += [threading.Thread(target=self.manage_keys), threading.Thread(target=self.read)]
        chaos = threading.Thread(target=self.chaos)
        for thread in [*threads, chaos]:
            thread.start()
        chaos.join()  # at least MIN_KILLS, and the last one's recovery, even past CHAOS_MINUTES
        self.stop.wait(max(0.0, self.started + self.minutes * 60 - time.monotonic()))
        self.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        exited = {name: process.returncode for name, process in [("web", self.web), *(
            (f"worker {n}", worker) for n, worker in enumerate(self.workers))] if process.poll() is not None}
        load_minutes = (time.monotonic() - self.started) / 60
        drained, statuses, ended = self.drain()
        report = self.report(statuses)
        report.update({"minutes of load": round(load_minutes, 1), "drain, s": round(drained, 1),
                       f"stored within {STORED_WITHIN:.0f} s of the load's end": sum(
                           1 for job, status in statuses.items() if status == "stored" and ended[job] <= STORED_WITHIN),
                       "processes that exited (no restart)": exited or "none"})
        return report

    def drain(self) -> tuple[float, dict[str, str | None], dict[str, float]]:
        """Wait until every acknowledged job is terminal or gone (404); its status (None: 404), and when each was
        first seen so (seconds from the load's end)."""
        started, statuses, waiting = time.monotonic(), {}, set(self.acknowledged.values())
        ended: dict[str, float] = {}
        while waiting and time.monotonic() - started < DRAIN_SECONDS:
            for job_id in sorted(waiting):
                try:
                    answer = self.admin.get(f"{self.base_url}/v1/jobs/{job_id}", timeout=(3, 10))
                except requests.RequestException:
                    continue
                if answer.status_code in (200, 404):
                    job = answer.json() if answer.status_code == 200 else {}
                    status = job.get("status")
                    statuses[job_id] = status
                    if status == "submitted" and not job.get("bfl_id"):
                        self.unanswered.add(job_id)
                    else:
                        self.unanswered.discard(job_id)
                    if status is None or status in fluxhook_client.TERMINAL:
                        waiting.discard(job_id)
                        ended[job_id] = time.monotonic() - started
            if waiting:
                time.sleep(1)  # jobs end in their own time: the fallback polls them after its grace
        return time.monotonic() - started, statuses, ended

    def report(self, statuses: dict[str, str | None]) -> dict:
        jobs = set(self.acknowledged.values())
        found = {job for job in jobs if statuses.get(job)}
        keys_lost, revocations_lost = self._key_changes_lost()
        late, refused, errors = self._web_answers_logged()
        sent_twice = self._sent_twice()
        self._list_lost(jobs - found)
        kills = [f for f in self.failovers if f.kind == "kill"]
        planned = [f for f in self.failovers if f.kind == "planned"]
        probes_in_use = sum(1 for answers in self.answers for _, _, what in answers if what.startswith("409"))
        unavailable = [f.unavailable if f.unavailable is not None else PROBE_LIMIT for f in kills]
        return {
            "failovers (primary SIGKILLed)": len(kills),
            "jobs acknowledged (202)": len(jobs),
            "found afterwards": len(found),
            "lost (acknowledged, then 404)": len(jobs - found),
            "never terminal": sum(1 for job in found if statuses[job] not in fluxhook_client.TERMINAL),
            # A send whose answer was lost with a primary: the job awaits BFL's callback (an hour, UNCERTAIN_FOR).
            "of those, submitted with no BFL id": len(self.unanswered & found),
            "sent to BFL twice (one Idempotency-Key)": len(sent_twice),
            "stored twice": self._stored_twice(found),
            "submissions given up (client's code)": dict(self.submit_errors) or "none",
            # A key left held by a request refused in a switch: its retries are answered 409 (the client retries them).
            "409 idempotency_key_in_use, all / to the probes": f"{self._in_use_answers()} / {probes_in_use}",
            "app keys created (201) / lost": f"{len(self.keys_created)} / {keys_lost}",
            "app keys revoked (204) / working again": f"{len(self.keys_revoked)} / {revocations_lost}",
            "key changes refused (client's code)": dict(self.key_errors) or "none",
            "reads by status": dict(sorted(self.reads.items(), key=str)),
            "callbacks answered not 2xx": refused or "none",
            "web answers 500 (any route)": errors,
            "writes unavailable per failover, s": " ".join(f"{s:.1f}" for s in unavailable) or "-",
            "sentinels' failover per failover, s": " ".join(f"{f.sentinels:.1f}" for f in kills) or "-",
            "new primary's replica online per failover, s": " ".join(
                _seconds(f.attached).removesuffix(" s") for f in kills) or "-",
            "worst unavailable beyond the sentinels', s": round(max(
                (s - f.sentinels for s, f in zip(unavailable, kills, strict=True)), default=0.0), 1),
            **self._planned_report(planned, jobs - found, sent_twice),
            "faults": dict(self.faults) or "none",
        }

    def _planned_report(self, planned: list[Failover], lost: set[str], sent_twice: list[dict]) -> dict:
        """The planned failovers' own lines: jobs acknowledged during and after them, how many of those were
        lost, requests to BFL first sent in their windows and sent again, their unavailable writes."""
        jobs: dict[str | None, set[str]] = collections.defaultdict(set)  # "during", "after", None -> job ids
        for key, at in self.acknowledged_at.items():
            jobs[_window(planned, at)].add(self.acknowledged[key])
        again = sum(1 for twice in sent_twice if _window(planned, twice["first_sent"]) is not None)
        return {
            "planned failovers (SENTINEL FAILOVER)": len(planned),
            "planned: jobs acknowledged during / 10 s after": f"{len(jobs['during'])} / {len(jobs['after'])}",
            "planned: of those, lost": len((jobs["during"] | jobs["after"]) & lost),
            "planned: sent to BFL twice, first sent then": again,
            "planned: writes unavailable per failover, s": " ".join(
                _seconds(f.unavailable).removesuffix(" s") for f in planned) or "-",
            "planned: sentinels' switch per failover, s": " ".join(f"{f.sentinels:.1f}" for f in planned) or "-",
            "planned: worst unavailable beyond the switch, s": round(max(0.0, *(
                (f.unavailable if f.unavailable is not None else PROBE_LIMIT) - f.sentinels for f in planned)), 1),
            "planned: new primary's replica online, s": " ".join(
                _seconds(f.attached).removesuffix(" s") for f in planned) or "-",
            "planned: old primary a replica again, s": " ".join(
                f"{f.restart:.1f}" if f.restart is not None else "-" for f in planned) or "-",
        }

    def _in_use_answers(self) -> int:
        """From the web's request log: submissions answered 409 (on POST /v1/jobs only idempotency_key_in_use)."""
        return sum(entry.get("method") == "POST" and entry.get("route") == "/v1/jobs" and entry.get("status") == 409
                   for entry in logged_requests(self.var))

    def _list_lost(self, lost: set[str]) -> None:
        """The jobs lost, each with its 202's time (s from the start) and failover window, in lost.json."""
        rows = [{"job": job, "idempotency_key": key, "acknowledged_at": round(self.acknowledged_at[key] - self.started, 2),
                 "failover": _window(self.failovers, self.acknowledged_at[key], kind=True)}
                for key, job in self.acknowledged.items() if job in lost]
        (self.var / "lost.json").write_text(json.dumps(rows, indent=1))

    def _sent_twice(self) -> list[dict]:
        """Idempotency-Keys whose request reached BFL more than once, each with its first task's time (``first_sent``,
        monotonic); all listed in sent-twice.json."""
        tasks = requests.get(f"{self.sim_url}/_sim/prompts", timeout=30).json()
        clock = time.time() - time.monotonic()  # the simulator's task times are wall-clock
        per_key: dict[str, list[float]] = collections.defaultdict(list)
        for prompt, created_at in zip(tasks["prompts"], tasks["created_at"], strict=True):
            if m := KEY_IN_PROMPT.search(prompt):
                per_key[m.group(1)].append(created_at - clock)
        twice = [{"idempotency_key": key, "bfl_tasks": len(times), "acknowledged_job": self.acknowledged.get(key),
                  "first_sent": min(times), "failover": _window(self.failovers, min(times), kind=True)}
                 for key, times in per_key.items() if len(times) > 1]
        (self.var / "sent-twice.json").write_text(json.dumps(twice, indent=1))
        return twice

    def _stored_twice(self, found: set[str]) -> int:
        sentinels = [tuple(address.split(":")) for address in self.env["REDIS_SENTINELS"].split(",")]
        db = Sentinel([(host, int(port)) for host, port in sentinels], socket_timeout=2).master_for(
            self.env["REDIS_SENTINEL_MASTER"], socket_timeout=5, decode_responses=True)
        twice = 0
        for job_id in found:
            entries = [json.loads(raw) for raw in db.lrange(KEYS.timeline(job_id), 0, -1)]
            twice += sum(1 for e in entries if e.get("kind") == "download" and e.get("outcome") == "stored") > 1
        return twice

    def _key_changes_lost(self) -> tuple[int, int]:
        """Created keys gone (404, or refused while never revoked), revoked keys that work again."""
        created_lost = revoked_lost = 0
        for key_id, secret in self.keys_created.items():
            shown = self.admin.get(f"{self.base_url}/v1/keys/{key_id}", timeout=(3, 10))
            works = requests.get(f"{self.base_url}/v1/jobs?limit=1", timeout=(3, 10),
                                 headers={"Authorization": f"Bearer {secret}"}).status_code == 200
            if key_id in self.keys_revoked:
                revoked_lost += works or shown.status_code != 200 or not shown.json().get("revoked_at")
            else:
                created_lost += shown.status_code == 404 or not works
        return created_lost, revoked_lost


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else f"> {PROBE_LIMIT:.0f} s"


def _answers_line(answers: list[tuple[float, float, str]]) -> str:
    """A probe's answers, runs of the same one merged: "0.0-3.1 s no answer x12; 3.4 s 202"."""
    runs: list[list] = []
    for sent, answered, what in answers:
        if runs and runs[-1][2] == what:
            runs[-1][1], runs[-1][3] = answered, runs[-1][3] + 1
        else:
            runs.append([sent, answered, what, 1])
    return "; ".join(f"{a:.1f}-{b:.1f} s {what}" + (f" x{n}" if n > 1 else "") for a, b, what, n in runs) or "no probe"


def _window(failovers: list[Failover], at: float, kind: bool = False) -> str | None:
    """Whether the monotonic time ``at`` falls "during" one of ``failovers`` (from WINDOW_BEFORE s before it began
    until the old primary was back as a replica) or "after" it (the WINDOW_AFTER s that follow), else None;
    with ``kind``, prefixed by that failover's kind and number ("planned 2 during")."""
    for n, failover in enumerate(failovers, start=1):
        back = failover.back if failover.back is not None else failover.began + PROBE_LIMIT
        window = ("during" if failover.began - WINDOW_BEFORE <= at <= back
                  else "after" if back < at <= back + WINDOW_AFTER else None)
        if window:
            return f"{failover.kind} {n} {window}" if kind else window
    return None


def serve_simulator(argv: list[str]) -> int:
    """The BFL simulator with one more control route, GET /_sim/prompts: every task's prompt and creation time
    (wall clock), so that a request sent to BFL twice shows, and when (the simulator's own control API looks
    tasks up by id only)."""
    import simulator.__main__ as simulator_main
    from simulator.app import simulator_of

    def create_app(settings):
        app = original(settings)

        @app.get("/_sim/prompts")
        def prompts():
            state = simulator_of(app)
            with state.lock:
                tasks = list(state.tasks.values())
            return {"prompts": [task.prompt for task in tasks], "created_at": [task.created_at for task in tasks]}

        return app

    original, simulator_main.create_app = simulator_main.create_app, create_app
    return simulator_main.main(argv)


def main() -> int:
    if sys.argv[1:2] == ["--simulator"]:
        return serve_simulator(sys.argv[2:])
    # A plain `kill` must stop the processes too (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    minutes, seed = float(os.environ.get("CHAOS_MINUTES", "3")), int(os.environ.get("CHAOS_SEED", "1"))
    replicas = int(os.environ.get("CHAOS_REPLICAS", "2"))
    delay = os.environ.get("CHAOS_DISKLESS_SYNC_DELAY", "0").strip()
    diskless_sync_delay = int(delay) if delay else None
    runs = [int(n) for n in os.environ.get("CHAOS_MIN_REPLICAS", "1 0").replace(",", " ").split()]
    var = Path(tempfile.mkdtemp(prefix="fluxhook-chaos-failover-"))
    schedule = failover_schedule(minutes, seed)
    print(f"chaos-failover: {minutes:g} min per run, kills at {[round(t) for t, kind in schedule if kind == 'kill']} s, "
          f"planned failovers at {[round(t) for t, kind in schedule if kind == 'planned']} s, {replicas} replicas, "
          f"repl-diskless-sync-delay {delay or 'default'}, "
          f"redis-server {redis_server_binary()}, logs in {var}", flush=True)
    reports = {}
    for min_replicas in runs:
        print(f"run with REDIS_MIN_REPLICAS={min_replicas}", flush=True)
        folder = var / f"min-replicas-{min_replicas}"
        folder.mkdir()
        run = FailoverRun(minutes, seed, min_replicas, folder, replicas, diskless_sync_delay)
        try:
            reports[min_replicas] = run.run()
        finally:
            run.close()
    names = list(reports[runs[0]])
    width = max(len(name) for name in names)
    column = max(24, *(len(str(report[name])) for report in reports.values() for name in names))
    print(f"{''.ljust(width)}  " + "  ".join(f"REDIS_MIN_REPLICAS={n}".ljust(column) for n in runs))
    for name in names:
        print(f"{name.ljust(width)}  " + "  ".join(str(reports[n][name]).ljust(column) for n in runs))
    first = reports.get(1)
    if first is None:
        return 0
    missed = (first["lost (acknowledged, then 404)"] or first["never terminal"] or first["stored twice"]
              or first["sent to BFL twice (one Idempotency-Key)"] or first["planned failovers (SENTINEL FAILOVER)"] < 1
              or first["409 idempotency_key_in_use, all / to the probes"] != "0 / 0"
              or any(not value.endswith(" / 0") for name, value in first.items() if name.startswith("app keys")))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
