"""Rows 39-44: no key can hold the web (docs/operating.md "No key can hold the web", docs/keys.md, docs/api.md; issue
83). Key A attacks, key B is the victim; B's figures are taken alone and under attack in the same row, in alternating
windows (alone, attack, alone, attack...), and the row HOLDS when B under attack keeps to the contract's bound against B
alone:

39. 16 of A's sockets (4 KB receive buffer) read A's own batch's ZIP at 1 KB/s; 40. the same on A's stored file;
41. A's 16 connections flood `GET /v1/jobs?limit=100` ignoring 429; 42. the same with long searches over many jobs
with long prompts; 43. A floods 10,000-item batches from 8 connections; 44. what a key holds: its queued items
(`429 queue_full`), a batch body's size (`413`), a duplicate JSON key (`400`).

A's floods (41-43) run in a process of their own (``flood``), so B's timings are not A's client's interpreter lock;
A floods reads at the deployment's READS_PER_MINUTE, B reads under a limit out of the way. A key's later work waits
queued behind a job holding its one slot (max_active 1, ``running_job``): nothing of A's floods reaches BFL. An answer
counted 0 is none: the connection closed or cut before one came."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import requests

from ..processes import free_port, start_process, stop_process
from ..stack import procfile_commands
from .flood import Flood, head_first
from .harness import BOUNDABLE, ROOMY_READS, TERMINAL, Api, Probe, Row, codes, finish, settle, wait_job
from .rows_batches import NDJSON, batch_of, error_code, percentile, post_batch, post_ndjson
from .rows_cancel import running_job

ALONE, ATTACK = 4.0, 5.0  # seconds of each window
CYCLES = 3  # alone + attack, this many times
GUARD = 1.0  # seconds at a window's start whose reads are not counted: the change settling
READ_PAUSE = 0.02  # seconds between B's reads
P50_RATIO, P99_RATIO, SLACK_MS = 1.5, 3.0, 1.0  # docs/operating.md: B's reads within 1.5x (p50) and 3x (p99) of alone
CALLBACK_SLACK = 0.05  # s: a callback under attack is acknowledged within 1.5x of alone's slowest and this
SLOW_READERS, READ_RATE, RECEIVE_BUFFER = 16, 1024, 4096  # A's sockets, each reading 1 KB a second, 4 KB SO_RCVBUF
# Each of A's stored files (the simulator's image_bytes): past what a loopback socket's send buffer grows to (4 MiB,
# tcp_wmem's most), so the answer waits on its reader. At 2 MB the kernel took a whole file at once.
FILE_BYTES = 8_000_000
FLOODERS = 16  # A's connections flooding reads, ignoring 429
SEARCH_JOBS, PROMPT_CHARS = 4000, 2000  # A's jobs its searches look through, their prompts as long as a job keeps
BATCH_FLOODERS, FLOOD_ITEMS = 8, 10_000  # A's connections posting 10,000-item batches, retrying on 503
BATCH_ANSWER = 5.0  # s: B's 3-item batch answered 202 within this under A's flood
BATCH_WINDOW, BATCH_DRAIN = 8.0, 10.0  # s: A's flood on, and then the most its batches in flight are waited for
QUEUE_LIMIT = 5  # A's max_queued (or MAX_QUEUED_PER_KEY on a web of its own, before keys have the field)
BODY_LIMIT = 1024 * 1024  # MAX_BATCH_BYTES on that web


# --------------------------------------------------------------------------- windows and B's figures


class Reads:
    """B reading ``path`` every READ_PAUSE s in a thread of its own until stopped: each read's start and ms."""

    def __init__(self, api: Api, path: str):
        self.api, self.path, self.samples = api, path, []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while not self.stopped.is_set():
            started, clock = time.monotonic(), time.perf_counter()
            try:
                self.api.get(self.path, timeout=60)
            except requests.RequestException:
                pass
            self.samples.append((started, (time.perf_counter() - clock) * 1000))
            self.stopped.wait(READ_PAUSE)

    def alone(self, windows: list[tuple[float, float]]) -> list[float]:
        """Reads begun after a window's guard and ended within it."""
        return [ms for at, ms in list(self.samples)
                if any(s + GUARD <= at and at + ms / 1000 <= e for s, e in windows)]

    def attacked(self, windows: list[tuple[float, float]]) -> list[float]:
        """Reads begun within a window and still running after its guard: a read held since the window began counts."""
        return [ms for at, ms in list(self.samples)
                if any(s <= at < e and at + ms / 1000 >= s + GUARD for s, e in windows)]

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=70)


def alternate(start: Callable[[int], None], stop: Callable[[int], None],
              during: Callable[[str, int, float], None] = lambda kind, n, ends: None,
              cycles: int = CYCLES, attack_seconds: float = ATTACK) -> tuple[list, list]:
    """Windows alone and under attack, in turns: ``start(n)`` and ``stop(n)`` the n-th attack, ``during(kind, n,
    ends)`` B's work in each window (which may run past its end). The windows alone, and those under attack."""
    alone, attack = [], []
    for n in range(cycles):
        began = time.monotonic()
        during("alone", n, began + ALONE)
        sleep_until(began + ALONE)
        alone.append((began, time.monotonic()))
        start(n)
        began = time.monotonic()
        during("attack", n, began + attack_seconds)
        sleep_until(began + attack_seconds)
        attack.append((began, time.monotonic()))
        stop(n)
    return alone, attack


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def judged(reads: Reads, alone_windows: list, attack_windows: list) -> tuple[bool, str, str]:
    """Whether B's reads under attack keep within P50_RATIO and P99_RATIO of alone; what B saw, what alone was."""
    alone, attacked = reads.alone(alone_windows), reads.attacked(attack_windows)
    a50, a99, b50, b99 = (percentile(alone, 0.5), percentile(alone, 0.99), percentile(attacked, 0.5),
                          percentile(attacked, 0.99))
    holds = bool(alone) and b50 <= P50_RATIO * a50 + SLACK_MS and b99 <= P99_RATIO * a99 + SLACK_MS
    return (holds, f"reads p50 {b50:,.1f} ms ({b50 / a50:.1f}x), p99 {b99:,.1f} ms ({b99 / a99:.1f}x), max "
            f"{max(attacked, default=0):,.0f} ms ({len(attacked)})",
            f"alone p50 {a50:.1f}, p99 {a99:.1f} ms ({len(alone)}); bound {P50_RATIO:g}x/{P99_RATIO:g}x")


# --------------------------------------------------------------------------- 39-40: slow readers


class SlowReaders:
    """Sockets of A's, each with a RECEIVE_BUFFER receive buffer, sending a GET and reading its answer READ_RATE
    bytes a second until stopped; each answer's status (0: none came)."""

    def __init__(self, base: str, token: str, paths: list[str]):
        self.host, port = base.removeprefix("http://").split(":")
        self.port, self.token, self.paths = int(port), token, paths
        self.statuses: list[int] = []
        self.read = 0

    def start(self) -> None:
        self.stopped, self.socks, self.heads = threading.Event(), [], [b"" for _ in self.paths]
        self.threads = [threading.Thread(target=self._read, args=(n, path), daemon=True)
                        for n, path in enumerate(self.paths)]
        for thread in self.threads:
            thread.start()

    def _read(self, n: int, path: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)  # before connect: the window it offers
        self.socks.append(sock)
        try:
            sock.settimeout(ATTACK + 5)
            sock.connect((self.host, self.port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                         f"Authorization: Bearer {self.token}\r\n\r\n".encode())
            while not self.stopped.is_set():
                chunk = sock.recv(READ_RATE)
                if not chunk:
                    return
                self.read += len(chunk)
                if len(self.heads[n]) < 64:
                    self.heads[n] += chunk[:64]
                self.stopped.wait(1.0)
        except OSError:
            pass

    def stop(self) -> None:
        """Each socket reset (SO_LINGER 0): the server's next write fails at once, as when a phone goes away."""
        self.stopped.set()
        for sock in list(self.socks):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass
        for thread in self.threads:
            thread.join(timeout=5)
        for head in self.heads:
            parts = head.split(b" ")
            self.statuses.append(int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0)


def ack_seconds(p: Probe, task_id: str, completed: float) -> tuple[float, bool]:
    """Seconds from BFL's completing the task (``completed``, epoch s: once its image is made, its callback starts)
    to fluxhook's answer to its first callback; whether that answer was a 2xx."""
    def attempted() -> dict | None:
        state = p.bfl.task_state(task_id)
        return state if state.get("callback_attempts") else None

    first = ((settle(attempted, 30, interval=0.1) or {}).get("callback_attempts") or [{}])[0]
    if not first:
        return float("inf"), False
    return max(0.0, first["at"] - completed), first.get("error") is None and 200 <= (first.get("status_code") or 0) < 300


def slow_reader_row(p: Probe, what: str, paths: Callable[[Api, list[dict]], list[str]]) -> Row:
    a, b = p.tenant(f"a-slow-{what}"), p.tenant(f"b-slow-{what}")
    p.bfl.settings(image_bytes=FILE_BYTES)
    try:
        made = post_batch(a, [{"input": {"prompt": f"A's file {n}", **BOUNDABLE}} for n in range(3)])
        batch_id = made.json().get("id", "")
        # B's jobs, each at BFL until a window of the row ends it: its callback is timed alone and under attack.
        with ThreadPoolExecutor(4) as pool:
            held = list(pool.map(lambda n: running_job(b, f"B's job {n} whose callback is timed"),
                                 range(2 * CYCLES + 1)))
        settle(lambda: batch_of(a, batch_id).get("status") == "ended", 40, interval=0.3)
        # B's images are BFL's smallest (64 x 48, made in a millisecond): BFL reports a task Ready while it makes the
        # image, before its callback starts, and a poll of fluxhook's in that moment (~0.3 s for a 1 MP scene) would
        # learn B's result first; then a `poll` source says nothing of the web.
        p.bfl.settings(image_bytes=1)
        alone, attack, acks, reads, readers, stored, size, tasks = slow_reader_windows(p, a, b, batch_id, paths, held)
    finally:
        p.bfl.settings(image_bytes=None)
    timed = {kind: [ack_seconds(p, tasks[job_id], at) for job_id, at in done] for kind, done in acks.items()}
    ended = [wait_job(b, job_id, lambda j: j["status"] in TERMINAL, 20)[0] for done in acks.values()
             for job_id, _ in done]
    finish(p, b, held[-1])
    sources = Counter(str(job.get("source")) for job in ended)
    holds, victim, base = judged(reads, alone, attack)
    slowest_alone = max(s for s, _ in timed["alone"])
    slowest = max(s for s, _ in timed["attack"])
    calls_hold = (all(ok for _, ok in timed["attack"]) and slowest <= 1.5 * slowest_alone + CALLBACK_SLACK
                  and sources == Counter({"webhook": len(ended)}) and all(j["status"] == "stored" for j in ended))
    return Row(f"{SLOW_READERS} sockets of A (SO_RCVBUF {RECEIVE_BUFFER}) reading {what} at {READ_RATE} B/s",
               f"{codes(readers.statuses)} over {CYCLES} windows; {len(stored)} stored, {size:,} B; read "
               f"{readers.read:,} B",
               f"{victim}; callbacks acked in {', '.join(f'{s:.2f}' for s, _ in timed['attack'])} s "
               f"(2xx first: {all(ok for _, ok in timed['attack'])}); sources {dict(sources)}",
               f"{base}; callbacks alone {', '.join(f'{s:.2f}' for s, _ in timed['alone'])} s",
               holds and calls_hold and len(stored) == 3)


def slow_reader_windows(p: Probe, a: Api, b: Api, batch_id: str, paths: Callable, held: list[str]) -> tuple:
    """The windows of a slow reader row: A's sockets on in turns, B reading its job and BFL ending one of B's jobs in
    each window, 2 s in."""
    items = a.get("/v1/jobs", params={"batch_id": batch_id, "limit": 100}).json().get("jobs", [])
    stored = [job for job in items if job["status"] == "stored"]
    size = sum((job.get("image") or {}).get("size", 0) for job in stored)
    readers = SlowReaders(p.stack.base_url, a.token or "", paths(a, stored) if stored else [])
    tasks = {job_id: b.job(job_id).get("bfl_id") or "" for job_id in held}
    acks: dict[str, list] = {"alone": [], "attack": []}

    def during(kind: str, n: int, ends: float) -> None:
        time.sleep(2.0)
        job_id = held[2 * n + (kind == "attack")]
        p.bfl.complete(tasks[job_id])  # answered once BFL has made the image, as its callback starts
        acks[kind].append((job_id, time.time()))

    reads = Reads(b, f"/v1/jobs/{held[-1]}")
    try:
        alone, attack = alternate(lambda n: readers.start(), lambda n: readers.stop(), during)
    finally:
        reads.stop()
    return alone, attack, acks, reads, readers, stored, size, tasks


def row_slow_zip(p: Probe) -> Row:
    """39. A's 16 sockets read A's own ended batch's ZIP at 1 KB/s: B's reads and BFL's callbacks for B's jobs."""
    return slow_reader_row(p, "its batch's ZIP", lambda a, stored: [
        f"/v1/batches/{stored[0]['batch_id']}/results?format=zip"] * SLOW_READERS)


def row_slow_file(p: Probe) -> Row:
    """40. A's 16 sockets read A's own stored files (GET /v1/jobs/{id}/image) at 1 KB/s: B's reads and callbacks."""
    return slow_reader_row(p, "its stored files", lambda a, stored: [
        f"/v1/jobs/{stored[n % len(stored)]['id']}/image" for n in range(SLOW_READERS)])


# --------------------------------------------------------------------------- 41-43: A's floods, in a process of theirs


def flood_row(p: Probe, a: Api, b: Api, b_job: str, path: str, connections: int,
              **more: Any) -> tuple[bool, str, str, dict]:
    with p.default_reads(a):  # A floods at the deployment's read limit; B's key reads without one
        flood = Flood(a, path=path, connections=connections, **more)
        reads = Reads(b, f"/v1/jobs/{b_job}")
        try:
            alone, attack = alternate(flood.on, flood.off)
        finally:
            reads.stop()
            answers = flood.result()
    holds, victim, base = judged(reads, alone, attack)
    return holds, victim, base, answers


def flood_answers(answers: dict, seconds: float) -> str:
    statuses = sorted_codes(answers["statuses"])
    return f"{codes(statuses)} ({len(statuses) / seconds:,.0f} a second under attack)"


def row_read_flood(p: Probe) -> Row:
    """41. A's 16 connections flood GET /v1/jobs?limit=100, ignoring 429: B's GET /v1/jobs/{id} p50 and p99."""
    a, b = p.tenant("a-read-flood"), p.tenant("b-read-flood")
    b_job = b.submit("B's job, read while A floods").json()["id"]
    wait_job(b, b_job, lambda j: j["status"] in TERMINAL, 30)
    holds, victim, base, answers = flood_row(p, a, b, b_job, "/v1/jobs?limit=100", FLOODERS)
    return Row(f"{FLOODERS} connections of A flooding GET /v1/jobs?limit=100, ignoring 429",
               flood_answers(answers, CYCLES * ATTACK), victim, base, holds)


def row_search_flood(p: Probe) -> Row:
    """42. A's 16 connections search its 4,000 jobs of 2,000-character prompts (each q new and matching none, so no
    process has its answer kept; limit=100), ignoring 429: B's GET /v1/jobs/{id} p50 and p99."""
    a, b = p.tenant("a-long-search", max_active=1), p.tenant("b-long-search")
    holder = running_job(a, "holds A's one slot: its searched jobs wait queued, never sent")
    words = "a lighthouse keeper's long account of the sea at dusk, the gulls and the slow tide " * 30
    made = post_batch(a, [{"input": {"prompt": f"{n} {words}"[:PROMPT_CHARS], **BOUNDABLE}}
                          for n in range(SEARCH_JOBS)], timeout=120)
    batch_id = made.json().get("id", "")
    settle(lambda: batch_of(a, batch_id).get("counts", {}).get("queued") == SEARCH_JOBS, 30, interval=0.3)
    clock = time.perf_counter()
    one = a.get("/v1/jobs", params={"q": "zebra-" + uuid.uuid4().hex[:6], "limit": 100}, timeout=120).status_code
    one_took = time.perf_counter() - clock
    b_job = b.submit("B's job, read while A searches").json()["id"]
    wait_job(b, b_job, lambda j: j["status"] in TERMINAL, 30)
    holds, victim, base, answers = flood_row(p, a, b, b_job, "/v1/jobs?q=zebra-{fresh}&limit=100", FLOODERS)
    a.post(f"/v1/batches/{batch_id}/cancel", timeout=120)
    finish(p, a, holder)
    return Row(f"{FLOODERS} connections of A searching {SEARCH_JOBS:,} jobs of {PROMPT_CHARS:,}-character prompts "
               "(limit=100), ignoring 429", f"{flood_answers(answers, CYCLES * ATTACK)}; one search alone {one} in "
               f"{one_took:.2f} s (batch {made.status_code})", victim, base, holds and made.status_code == 202)


def row_batch_flood(p: Probe) -> Row:
    """43. A floods 10,000-item batches from 8 connections (retrying on 503): B's 3-item batch answered 202 in 5 s."""
    a, b = p.tenant("a-batch-flood", max_active=1), p.tenant("b-batch-flood", max_active=1)
    holders = [running_job(a, "holds A's one slot"), running_job(b, "holds B's one slot")]
    flood = Flood(a, method="POST", path="/v1/batches", connections=BATCH_FLOODERS, items=FLOOD_ITEMS)
    flood.drain = BATCH_DRAIN
    posted: dict[str, list[tuple[int, float]]] = {"alone": [], "attack": []}

    def during(kind: str, n: int, ends: float) -> None:
        """B's 3-item batches, one after another a second apart; one answered past twice the bound is cut off."""
        while time.monotonic() < ends - 0.5:
            time.sleep(0.5)
            clock = time.monotonic()
            try:
                status = post_batch(b, [{"input": {"prompt": f"B's item {i}", **BOUNDABLE}} for i in range(3)],
                                    timeout=2 * BATCH_ANSWER).status_code
            except requests.RequestException:
                status = 0
            posted[kind].append((status, time.monotonic() - clock))
            time.sleep(0.5)

    try:
        alternate(flood.on, flood.off, during, cycles=2, attack_seconds=BATCH_WINDOW)
    finally:
        answers = flood.result()
    for api in (a, b):  # what is left running (a cancel cut off), canceled: nothing of theirs waits into the next row
        for batch in api.get("/v1/batches", params={"limit": 100}).json()["batches"]:
            if batch["status"] == "running":
                api.post(f"/v1/batches/{batch['id']}/cancel", timeout=120)
    finish(p, a, holders[0])
    finish(p, b, holders[1])
    alone, attacked = ([s for _, s in posted[k]] for k in ("alone", "attack"))
    statuses = [s for s, _ in posted["attack"]]
    took = answers.get("took") or {}
    holds = bool(attacked) and set(statuses) == {202} and max(attacked) <= BATCH_ANSWER
    return Row(f"A floods {FLOOD_ITEMS:,}-item batches from {BATCH_FLOODERS} connections (retrying on 503, each 202 "
               "canceled)", f"{codes(sorted_codes(answers['statuses']))}; made in p50 "
               f"{percentile(took.get('made', []), 0.5):.1f} s, cancels {codes(sorted_codes(answers['cancels']))} in "
               f"p50 {percentile(took.get('canceled', []), 0.5):.1f} s; drained in "
               f"{', '.join(f'{d:.0f}' for d in flood.drains)} s",
               f"B's 3-item batches {codes(statuses)} in p50 {percentile(attacked, 0.5):.2f}, max "
               f"{max(attacked, default=0):.2f} s (cut off at {2 * BATCH_ANSWER:g} s: 0)",
               f"alone {codes([s for s, _ in posted['alone']])} in p50 {percentile(alone, 0.5):.2f}, max "
               f"{max(alone, default=0):.2f} s; bound {BATCH_ANSWER:g} s, never 503", holds)


def sorted_codes(counts: dict) -> list[int]:
    return [int(status) for status, count in sorted(counts.items(), key=lambda kv: -kv[1]) for _ in range(count)]


# --------------------------------------------------------------------------- 44: what a key holds


def own_web(p: Probe) -> tuple[subprocess.Popen, Api]:
    """The Procfile's web on a port of its own, on the stack's Redis, with MAX_QUEUED_PER_KEY and MAX_BATCH_BYTES
    small: an operator's settings, beside the stack's own web."""
    port = free_port()
    env = dict(p.stack.env, PORT=str(port), GUNICORN_CMD_ARGS=f"--bind 127.0.0.1:{port}", WEB_CONCURRENCY="1",
               MAX_QUEUED_PER_KEY=str(QUEUE_LIMIT), MAX_BATCH_BYTES=str(BODY_LIMIT))
    web = start_process(["sh", "-c", "exec " + procfile_commands()["web"]], env, log_path=str(p.var_dir / "own-web.log"))
    api = Api(f"http://127.0.0.1:{port}")
    settle(lambda: web.poll() is not None or answers(api), 30, interval=0.2)
    return web, api


def answers(api: Api) -> bool:
    try:
        return api.get("/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def rss_kib(web: subprocess.Popen) -> int:
    """What the web's processes hold in memory (their group's VmRSS), KiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if os.getpgid(int(status.parent.name)) == web.pid:
                total += int(next(line for line in status.read_text().splitlines()
                                     if line.startswith("VmRSS")).split()[1])
        except (OSError, StopIteration, ValueError):
            pass
    return total


def same_key(api: Api, on: Api) -> Api:
    return Api(on.base, api.token, api.key_id)


def raw_post(api: Api, path: str, text: str, kind: str = "application/json") -> requests.Response:
    return api.call("POST", path, data=text.encode(), headers={"Content-Type": kind}, timeout=60)


def row_key_holds(p: Probe) -> Row:
    """44. A's queued items past its limit (429 queue_full, nothing created, B still creates), a batch body past
    MAX_BATCH_BYTES (413), a duplicate JSON key (400)."""
    made = p.admin.post("/v1/keys", {"name": f"a-queue-{uuid.uuid4().hex[:6]}", "max_active": 1,
                                     "max_queued": QUEUE_LIMIT, "reads_per_minute": ROOMY_READS})
    if made.status_code == 201:
        key, where = made.json(), "the key's max_queued"
        a = Api(p.stack.base_url, key["key"], key["id"])
    else:  # keys have no max_queued yet: the setting, on a web of its own
        a, where = p.tenant("a-queue", max_active=1), f"MAX_QUEUED_PER_KEY (max_queued: {made.status_code})"
    b, c = p.tenant("b-queue", max_active=1), p.tenant("c-bodies", max_active=1)
    holders = [running_job(api, "holds the key's one slot") for api in (a, b, c)]
    web, on_web = own_web(p)
    try:
        queue_web = a if made.status_code == 201 else on_web
        a_at, b_at, c_at = same_key(a, queue_web), same_key(b, queue_web), same_key(c, on_web)
        queued = [a_at.submit(f"A's queued {n}").status_code for n in range(QUEUE_LIMIT)]
        before = counted(a)
        past = [a_at.submit("A's one past its limit"),
                post_batch(a_at, [{"input": {"prompt": "A's past", **BOUNDABLE}}] * 2),
                post_ndjson(a_at, json.dumps({"input": {"prompt": "A's line past", **BOUNDABLE}}).encode())]
        after = counted(a)
        b_made = [b_at.submit("B's job beside A's full queue").status_code,
                  post_batch(b_at, [{"input": {"prompt": f"B's item {n}", **BOUNDABLE}} for n in range(3)]).status_code]
        # A body past MAX_BATCH_BYTES, as JSON and NDJSON (two items of long prompts), and the web's memory after.
        rss_before = rss_kib(web)
        prompt = "x" * (BODY_LIMIT // 2 + 1024)
        item = json.dumps({"input": {"prompt": prompt, **BOUNDABLE}})
        big = [fresh_post(c_at, "/v1/batches", '{"model": "flux-2-pro", "items": [%s, %s]}' % (item, item)),
               fresh_post(c_at, "/v1/batches?model=flux-2-pro", f"{item}\n{item}\n", NDJSON)]
        rss_after = rss_kib(web)
    finally:
        stop_process(web)
    good = '{"prompt": "C\'s duplicate", "width": 1000, "height": 1000}'
    duplicated = [raw_post(c, "/v1/jobs", '{"model": "flux-2-pro", "input": %s, "model": "flux-dev"}' % good),
                  raw_post(c, "/v1/jobs", '{"model": "flux-2-pro", "input": {"prompt": "a", "prompt": "b"}}'),
                  raw_post(c, "/v1/batches", '{"model": "flux-2-pro", "items": [{"input": %s}], "model": "flux-dev"}'
                           % good),
                  raw_post(c, "/v1/batches?model=flux-2-pro", '{"input": %s, "input": %s}\n' % (good, good), NDJSON)]
    c_made = counted(c)
    for api, holder in zip((a, b, c), holders, strict=True):  # nothing of theirs is left queued or at BFL
        for batch in api.get("/v1/batches", params={"limit": 100}).json().get("batches", []):
            api.post(f"/v1/batches/{batch['id']}/cancel")
        for job in api.get("/v1/jobs", params={"status": "queued", "limit": 100}).json().get("jobs", []):
            api.call("DELETE", f"/v1/jobs/{job['id']}")
        finish(p, api, holder)
    refused = [(r.status_code, error_code(r)) for r in past]
    holds = (queued == [202] * QUEUE_LIMIT and all(r == (429, "queue_full") for r in refused) and after == before
             and b_made == [202, 202] and [status for status, _ in big] == [413, 413]
             and all(r.status_code == 400 for r in duplicated) and c_made == (0, 1))
    return Row(f"A's queued items past {QUEUE_LIMIT} ({where}); C's batch bodies past MAX_BATCH_BYTES {BODY_LIMIT:,}; "
               "duplicate JSON keys", f"queued {codes(queued)}, past it {', '.join(f'{s} {c}' for s, c in refused)}; "
               f"A's batches/jobs {before} → {after}; bodies past the size {codes([status for status, _ in big])}; "
               f"duplicate keys {codes([r.status_code for r in duplicated])}",
               f"B's job and 3-item batch beside A's full queue: {codes(b_made)}",
               f"C's batches/jobs after (its held job only): {c_made}; the web's RSS {rss_before / 1024:,.0f} → "
               f"{rss_after / 1024:,.0f} MiB", holds)


def fresh_post(api: Api, path: str, text: str, kind: str = "application/json") -> tuple[int, str | None]:
    """A POST on a connection of its own, its body sent until an answer comes (a server refusing a body may answer
    before it has it all): the answer's status (0: none) and error code."""
    host, port = api.base.removeprefix("http://").split(":")
    status, rest, _, _ = head_first(host, int(port), {"Authorization": f"Bearer {api.token}", "Content-Type": kind},
                                    path, text.encode(), head_wait=0)
    try:
        code = (json.loads(rest).get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return status, code


def counted(api: Api) -> tuple[int, int]:
    """The key's batches and jobs (the first page of each)."""
    return (len(api.get("/v1/batches", params={"limit": 100}).json().get("batches", [])),
            len(api.get("/v1/jobs", params={"limit": 100}).json().get("jobs", [])))


# What the rows take, about, besides the rest's RUN_LIMIT (__main__): up to 90 s on c62e1e8's code for row 43.
ROWS_SECONDS = 330
ROWS = (row_slow_zip, row_slow_file, row_read_flood, row_search_flood, row_batch_flood, row_key_holds)
