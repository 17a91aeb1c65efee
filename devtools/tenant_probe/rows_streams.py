"""Rows 23-25: the job streams (docs/api.md "Streams", docs/operating.md): X reaching V's jobs through its streams and crafted
``Last-Event-ID``s, and X holding every stream it may, never reading, while V streams, reads and gets its callbacks."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import BFL_ANSWERS_AFTER, SENT, TASK_SECONDS, TERMINAL, Api, Probe, Row, codes, finish, settle, wait_job
from .rows_cancel import running_job
from .sse import Collector, silent_stream

STREAM_LIMIT = 20  # MAX_STREAMS_PER_CALLER's default, which the probe's stack keeps
SLOW_ALLOWANCE = 2.0  # seconds V's job may take to stored beyond its time without X's streams, in the same row


def status_of(api: Api, path: str, headers: dict) -> int:
    """The status a stream's request is answered, the stream (were it one) closed at once."""
    stream = Collector(api, path, headers)
    stream.close()
    return stream.status


def row_streams_of_another(p: Probe) -> Row:
    """23. X's streams through V's whole job: /v1/events (plain, Last-Event-ID 0), V's job's own stream."""
    x, v = p.tenant("x-streams"), p.tenant("v-streams")
    marker = f"v-stream-secret-{time.time_ns()}"
    mine = Collector(v, "/v1/events")  # V's own stream: what X's must never carry
    x_all = Collector(x, "/v1/events")
    x_replay = Collector(x, "/v1/events", {"Last-Event-ID": "0-000000000000"})  # everything since the epoch
    job_id = running_job(v, f"V's streamed job {marker}")
    v_own = Collector(v, f"/v1/jobs/{job_id}/events")
    settle(lambda: v_own.jobs, 5)
    version = v_own.jobs[0]["id"] if v_own.jobs else ""
    by_id = [status_of(x, f"/v1/jobs/{job_id}/events", h)
             for h in ({}, {"Last-Event-ID": f"{int(time.time() * 1000)}-000000000000"}, {"Last-Event-ID": version})]
    x_own = x.submit("X's own streamed job").json()["id"]  # X's stream works: it carries X's job
    finish(p, v, job_id)
    settle(lambda: "stored" in mine.statuses_of(job_id) and "stored" in x_all.statuses_of(x_own), 20)
    late = Collector(x, "/v1/events", {"Last-Event-ID": "1-000000000000"})  # after V's job ended
    time.sleep(1.5)  # what a stream would still carry of V's last change
    streams = (x_all, x_replay, late)
    leaked = sum(job_id in s.ids() or marker.encode() in s.text() for s in streams)
    seen = mine.statuses_of(job_id)
    for stream in (mine, v_own, *streams):
        stream.close()
    holds = (set(by_id) == {404} and all(s.status == 200 for s in streams) and leaked == 0 and "stored" in seen
             and x_own in x_all.ids())
    return Row("streams: X's /v1/events (plain, Last-Event-ID 0 and 1) through V's job; V's job's stream",
               f"V's job's stream {codes(by_id)}; X's streams carried V's job: {leaked} of 3",
               f"V's stream: {' → '.join(dict.fromkeys(seen))}", f"X's own job on X's stream: {x_own in x_all.ids()}",
               holds)


# Last-Event-IDs a hostile client sends: too long, past the ids' digits, the highest they hold, negative, quotes,
# a path, a control character, non-ASCII bytes, and one far too long for a header.
HOSTILE_IDS = ("9" * 65, "99999999999999999-ffffffffffff", "9999999999999999-ffffffffffff", "-1-000000000000",
               "' OR 1=1 --", "../../v1/keys", "1-\x01\x7f", "١٢٣-ébc", "9" * 20000)


def row_hostile_last_event_id(p: Probe) -> Row:
    """24. X's hostile Last-Event-IDs on /v1/events and its own job's stream: refused or ignored, never V's."""
    x, v = p.tenant("x-event-id"), p.tenant("v-event-id")
    marker = f"v-event-id-secret-{time.time_ns()}"
    v_job = v.submit(f"V's job {marker}").json()["id"]
    x_job = x.submit("X's own job").json()["id"]
    statuses, opened = [], []
    for value in HOSTILE_IDS:
        for path in ("/v1/events", f"/v1/jobs/{x_job}/events"):
            stream = Collector(x, path, {"Last-Event-ID": value.encode()})
            statuses.append(stream.status)
            opened.append(stream)
    wait_job(v, v_job, lambda j: j["status"] in TERMINAL, 30)
    time.sleep(1.5)
    leaked = sum(v_job in s.ids() or marker.encode() in s.text() for s in opened)
    for stream in opened:
        stream.close()
    after = v.get(f"/v1/jobs/{v_job}").status_code
    holds = all(code in (200, 204, 400, 431) for code in statuses) and 400 in statuses and leaked == 0 and after == 200
    return Row(f"Last-Event-ID: {len(HOSTILE_IDS)} hostile values on X's two kinds of stream", codes(statuses),
               f"V's job answers {after}", f"streams carrying V's job: {leaked}", holds)


def job_to_stored(api: Api, prompt: str) -> float:
    """Seconds from a job's submission to its being stored (BFL's callback, the download)."""
    started = time.monotonic()
    job_id = api.submit(prompt).json()["id"]
    wait_job(api, job_id, lambda j: j["status"] in TERMINAL, 30)
    return time.monotonic() - started


def read_ms(api: Api, job_id: str, count: int = 20) -> float:
    """The median of ``count`` reads of the job, in ms."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        api.get(f"/v1/jobs/{job_id}")
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took)


def row_stream_flood(p: Probe) -> Row:
    """25. X opens streams past MAX_STREAMS_PER_CALLER and never reads them while its jobs change; V streams on."""
    x, v = p.tenant("x-stream-flood"), p.tenant("v-stream-flood")
    base_stored = job_to_stored(v, "V's job before X's streams")
    v_job = v.submit("V's job to read").json()["id"]
    base_read = read_ms(v, v_job)
    paths = ["/v1/events"] * (STREAM_LIMIT + 5)
    with ThreadPoolExecutor(8) as pool:
        opened = list(pool.map(lambda path: silent_stream(p.stack.base_url, x.token, path), paths))
    statuses = [status for _, status in opened]
    with ThreadPoolExecutor(8) as pool:  # X's jobs change: its unread streams fill with their events
        x_jobs = list(pool.map(lambda n: x.submit(f"X's streamed job {n}").json()["id"], range(10)))
    v_stream = Collector(v, "/v1/events")
    during_stored = job_to_stored(v, "V's job among X's unread streams")
    during_read = read_ms(v, v_job)
    settle(lambda: all(x.job(j)["status"] in SENT for j in x_jobs), 20)
    v_got = len(v_stream.jobs)
    v_stream.close()
    for sock, _ in opened:
        sock.close()
    holds = (statuses.count(200) == STREAM_LIMIT and statuses.count(429) == 5 and v_stream.status == 200
             and v_got > 0 and during_stored <= base_stored + SLOW_ALLOWANCE
             and during_read <= max(3 * base_read, base_read + 50))
    return Row(f"stream flood: X opens {len(paths)} /v1/events, never reads, 10 of its jobs change",
               codes(statuses), f"V's stream {v_stream.status} ({v_got} events); V's job stored in {during_stored:.1f} s, "
               f"reads {during_read:.0f} ms", f"without X's streams {base_stored:.1f} s, {base_read:.0f} ms "
               f"(BFL {BFL_ANSWERS_AFTER:g} s + task {TASK_SECONDS:g} s)", holds)


ROWS = (row_streams_of_another, row_hostile_last_event_id, row_stream_flood)
