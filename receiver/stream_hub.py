"""The open streams of one web process, served by one thread (docs/api.md "Streams", docs/operating.md bulkheads).

A stream's request is answered like any other (a work permit, a thread, a few Redis reads: ``receiver/events.py``);
then the web worker hands its socket over (``buffering_worker.BufferingWorker``) and the request's thread and
permit go back to serving others at once. From there this process's hub, one thread, keeps every open stream:

* it hears the process's announcements of job changes (``store.job_changes``, the subscription ``Prefer: wait``
  shares), reads each announced job once however many streams show it, and writes an event to those that show
  it and have not seen that state (``event_frames``);
* every ``WATCH_SECONDS`` it marks the running jobs its streams show as watched (``lifecycle.watching``), and
  looks again at the queued ones, whose ``waiting`` follows the slots (read, never announced);
* it writes a keepalive comment to a stream that sent nothing for ``KEEPALIVE_SECONDS``, renews the streams'
  leases (``store.streams``) and gives each back as its stream ends.

An idle stream holds a socket and a few hundred bytes: no thread, no work permit, no Redis connection. Sockets are
written without waiting; a reader that takes nothing for ``STUCK_SECONDS``, or leaves ``MAX_PENDING_BYTES`` unread,
is cut off, so no reader holds the hub back.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from fluxhook.core import job as st
from fluxhook.core.batch import Batch
from fluxhook.core.job import Job
from fluxhook.core.job_filters import JobFilter
from fluxhook.core.recent import Recent
from fluxhook.lifecycle.steps import waits
from fluxhook.lifecycle.steps.callers import Caller
from fluxhook.lifecycle.steps.presenting import present
from fluxhook.lifecycle.watching import watch
from fluxhook.services import Services
from fluxhook.store.job_changes import Listener
from fluxhook.store.streams import RENEW_SECONDS

from . import event_frames as frames

log = logging.getLogger("fluxhook.streams")

KEEPALIVE_SECONDS = 14.0  # checked each second: a comment at least every 15 s
WATCH_SECONDS = 4.0  # at most 5 s between two marks of a watched job
STUCK_SECONDS = 30.0
MAX_PENDING_BYTES = 1024 * 1024
# Running jobs one /v1/events stream marks as watched: its newest ones.
WATCHED_PER_STREAM = 20
# Streams one process holds (each a socket): past it, a new one is refused (503) rather than the process's files.
STREAMS_PER_PROCESS = 1000
# The jobs a /v1/events stream starts with: at most this many of each running status (and of the newest, on a
# reconnect).
FIRST_JOBS = 100
# Streams of one caller that start within this long of each other start from one read of its jobs.
FIRST_EVENTS_SHARED_SECONDS = 1.0
# How long a client waits before it reconnects (text/event-stream's ``retry``).
RETRY_MS = 3000
# A batch's streams are shown its batch at most this often (docs/api.md: at most one event a second).
BATCH_SECONDS = 1.0


@dataclass(eq=False)
class Stream:
    """One open stream: whose it is, what it follows, and what waits to be written to it."""

    scope: str  # the caller's, for the leases
    viewer: Caller  # which jobs it may show
    job_id: str | None  # None: every job the viewer sees (GET /v1/events), or its batch's
    last_event_id: str | None = None
    batch_id: str | None = None  # a batch's stream (GET /v1/batches/{id}/events): its batch object as its counts change
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sock: socket.socket | None = None
    chunked: bool = True
    queued: bytearray = field(default_factory=bytearray)  # events not yet framed for the wire
    pending: bytearray = field(default_factory=bytearray)  # bytes for the wire, not yet taken by the socket
    # The digest of the state last sent, per job; and, on /v1/events, the high-water mark of updated_at (ms).
    sent: dict[str, str] = field(default_factory=dict)
    high_water: int = 0
    # The jobs it marks as watched (running ones), newest last; those last shown queued are looked at again.
    running: Recent[str, str] = field(default_factory=lambda: Recent(WATCHED_PER_STREAM))
    last_write: float = field(default_factory=time.monotonic)
    stuck_since: float | None = None
    registered: bool = False  # with the hub's selector: the hub writes to it
    ending: bool = False
    finished: bool = False  # its last chunk is queued
    closed: bool = False

    def show(self, job: Job, event: "JobEvent", *, seen: bool = False) -> bool:
        """Queue the job's event unless this stream sent that state already (or its client ``seen`` it, before
        it reconnected); True if it did."""
        digest = event.digest
        if self.sent.get(job.id) == digest:
            return False
        self.sent[job.id] = digest
        if not seen:
            millis = int(job.updated_at * 1000)
            if self.job_id is None:
                self.high_water = max(self.high_water, millis)
                millis = self.high_water
            self.queued += frames.frame("job", event.body, frames.event_id(millis, digest))
        self._follow(job)
        return not seen

    def show_batch(self, batch: Batch) -> None:
        """Queue the batch object unless this stream sent it as it is; the stream ends with the batch's end."""
        shown = batch.to_api()
        digest = frames.shown_batch(shown)
        if self.sent.get(batch.id) != digest:
            self.sent[batch.id] = digest
            self.queued += frames.frame("batch", frames.encode(shown), frames.event_id(int(time.time() * 1000), digest))
        self.ending = self.ending or batch.ended_at is not None

    def _follow(self, job: Job) -> None:
        if job.terminal:
            self.running.pop(job.id, None)
            self.sent.pop(job.id, None)  # a terminal job never changes again
            self.ending = self.ending or self.job_id is not None  # a job's own stream ends with its terminal event
        else:
            self.running[job.id] = job.status

    def wire(self) -> None:
        """Frame what is queued for the wire (chunked when the answer is); the last chunk once it ends."""
        if self.queued:
            self.pending += frames.chunk(bytes(self.queued)) if self.chunked else self.queued
            self.queued.clear()
        if self.ending and not self.finished:
            self.finished = True
            if self.chunked:
                self.pending += frames.LAST_CHUNK


@dataclass(frozen=True)
class JobEvent:
    """One job's event as every stream sends it: its JSON and the digest of what it shows, made once."""

    body: bytes
    digest: str

    @classmethod
    def of(cls, shown: dict) -> "JobEvent":
        return cls(frames.encode(shown), frames.shown(shown))


class Hub:
    """This process's open streams and the thread that serves them."""

    def __init__(self, svc: Services):
        self.svc = svc
        self._lock = threading.Lock()
        self._streams: set[Stream] = set()
        self._by_job: dict[str, set[Stream]] = {}
        self._everything: set[Stream] = set()  # the /v1/events streams
        self._batches: set[Stream] = set()  # the batches' streams, each looked at once a second
        self._arrived: deque[Stream] = deque()
        self._announced: deque[str] = deque()
        self._look_again = False
        # Made with the hub's thread, which keeps them for the process's life (``_start``): an app that never holds a
        # stream (a command's, a test's) leaves no socket open behind it.
        self._selector: selectors.BaseSelector
        self._wake_r: socket.socket
        self._wake_w: socket.socket
        self._thread: threading.Thread | None = None
        self._next_watch = self._next_renew = self._next_batches = 0.0
        # The first events of /v1/events streams, by caller (None: an admin's), while fresh (hub thread only).
        self._first_events: dict[str | None, tuple[float, list[tuple[Job, JobEvent]]]] = {}

    # -- from request threads

    def full(self) -> bool:
        with self._lock:
            return len(self._streams) >= STREAMS_PER_PROCESS

    def open(self, stream: Stream, limit: int) -> bool:
        """Lease the stream to its caller (False: the caller holds ``limit``) and count it in this process."""
        if not self.svc.store.streams.open(stream.scope, stream.id, limit):
            return False
        with self._lock:
            self._streams.add(stream)
            if stream.batch_id is not None:
                self._batches.add(stream)
            elif stream.job_id is None:
                self._everything.add(stream)
            else:
                self._by_job.setdefault(stream.job_id, set()).add(stream)
        self._start()
        return True

    def attach(self, stream: Stream, sock: socket.socket, chunked: bool) -> None:
        """The stream's answer has begun on ``sock``: from here the hub writes the rest (the web worker calls it)."""
        sock.setblocking(False)
        stream.sock, stream.chunked = sock, chunked
        stream.last_write = time.monotonic()
        with self._lock:
            self._arrived.append(stream)
        self._wake()

    def abandon(self, stream: Stream) -> None:
        """The stream never began (its answer failed, or no socket came): give its lease back."""
        self._forget(stream)

    # -- from the subscription's thread

    def _changed(self, job_id: str) -> None:
        with self._lock:
            if not self._everything and job_id not in self._by_job:
                return  # nobody here follows it
            self._announced.append(job_id)
        self._wake()

    def _reconnected(self) -> None:
        """Announcements made while unsubscribed were lost: every stream's jobs are looked at again."""
        with self._lock:
            self._look_again = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full)

    # -- the hub's thread

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, selectors.EVENT_READ, None)
            self._thread = threading.Thread(target=self._run, name="stream-hub", daemon=True)
            self._thread.start()
        self.svc.store.job_changes.add(Listener(self._changed, self._reconnected))

    def _run(self) -> None:
        while True:
            try:
                self._turn()
            except Exception:  # the hub must outlive any one stream's trouble
                log.exception("stream hub: a turn failed")
                time.sleep(0.5)

    def _turn(self) -> None:
        for key, mask in self._selector.select(timeout=1.0):
            if key.data is None:
                self._drain_wake()
                continue
            stream: Stream = key.data
            if mask & selectors.EVENT_READ:
                self._read(stream)
            if mask & selectors.EVENT_WRITE and not stream.closed:
                self._flush(stream)
        with self._lock:
            arrived = list(self._arrived)
            self._arrived.clear()
            announced = list(dict.fromkeys(self._announced))
            self._announced.clear()
            look_again, self._look_again = self._look_again, False
        for stream in arrived:
            self._selector.register(stream.sock, selectors.EVENT_READ, stream)  # type: ignore[arg-type]
            stream.registered = True
            self._begin(stream)
            self._flush(stream)
        if look_again:
            announced = list(dict.fromkeys([*announced, *self._followed()]))
        if announced:
            self._show(announced)
        now = time.monotonic()
        if now >= self._next_watch:
            self._next_watch = now + WATCH_SECONDS
            self._watch()
        if now >= self._next_batches:
            self._next_batches = now + BATCH_SECONDS
            self._show_batches()
        if now >= self._next_renew:
            self._next_renew = now + RENEW_SECONDS
            with self._lock:
                held = [(s.scope, s.id) for s in self._streams]
            self.svc.store.streams.renew(held)
        self._keep_alive(now)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _live(self, *groups: Iterable[Stream]) -> list[Stream]:
        """Those of the streams in ``groups`` (none given: every one) that the hub writes to and are still open."""
        with self._lock:
            return [s for group in groups or (self._streams,) for s in group if s.registered and not s.closed]

    def _followed(self) -> list[str]:
        """The jobs the open streams show now: their own job, or the running ones they showed."""
        ids: list[str] = []
        for stream in self._live():
            ids += [stream.job_id] if stream.job_id is not None else list(stream.running)
        return ids

    def _show(self, job_ids: list[str]) -> None:
        """Read each job once and write its event to every stream that shows it and has not seen that state."""
        for job_id in job_ids:
            streams = self._live(self._by_job.get(job_id, ()), self._everything)
            if not streams:
                continue
            job = self.svc.jobs.get(job_id)
            if job is None:
                for stream in streams:
                    if stream.job_id == job_id:
                        self._end(stream)  # deleted: its stream has nothing more to show
                continue
            event = JobEvent.of(present(self.svc.config, job, waits.of(self.svc, job)))
            for stream in streams:
                if (stream.job_id == job_id or stream.job_id is None and stream.viewer.sees(job)) \
                        and stream.show(job, event):
                    self._flush(stream)

    def _show_batches(self) -> None:
        """Read the followed batches (one round trip) and write each to its streams that have not seen it as it is: at
        most one event a second however fast its items move (its counts are one read, whatever its size)."""
        by_batch: dict[str, list[Stream]] = {}
        for stream in self._live(self._batches):
            by_batch.setdefault(stream.batch_id or "", []).append(stream)
        for followers, batch in zip(by_batch.values(), self.svc.store.batches.get_many(list(by_batch)), strict=True):
            for stream in followers:
                if batch is None:
                    self._end(stream)
                    continue
                stream.show_batch(batch)
                self._flush(stream)

    def _begin(self, stream: Stream) -> None:
        """A stream's first events, read as it starts (what changed before is in them): its job, unless the
        client saw it as it is; on /v1/events the caller's running jobs, or those changed since its last event."""
        if stream.batch_id is not None:
            return  # its batch is shown at the hub's next look, within a second
        if stream.job_id is not None:
            job = self.svc.jobs.get(stream.job_id)
            if job is None:
                self._end(stream)
                return
            event = JobEvent.of(present(self.svc.config, job, waits.of(self.svc, job)))
            seen = not frames.owed(stream.last_event_id, frames.event_id(int(job.updated_at * 1000), event.digest))
            stream.show(job, event, seen=seen)
            return
        for job, event in self._jobs_for(stream):
            stream.show(job, event)

    def _jobs_for(self, stream: Stream) -> list[tuple[Job, JobEvent]]:
        """The first events of a /v1/events stream; streams of one caller starting together share one read."""
        key_id = stream.viewer.key_id
        if stream.last_event_id is None:
            cached = self._first_events.get(key_id)
            if cached is not None and time.monotonic() - cached[0] < FIRST_EVENTS_SHARED_SECONDS:
                return cached[1]
        jobs: dict[str, Job] = {}
        for status in st.ACTIVE:
            jobs.update((job.id, job) for job in self.svc.jobs.list(JobFilter(status=status, key_id=key_id), FIRST_JOBS)[0])
        since = frames.since(stream.last_event_id)
        if since is not None:
            stream.high_water = since
            recent, _ = self.svc.jobs.list(JobFilter(key_id=key_id), FIRST_JOBS)
            jobs.update((job.id, job) for job in recent)
            floor = since - frames.RECONNECT_MARGIN_MS
            jobs = {job_id: job for job_id, job in jobs.items() if job.updated_at * 1000 >= floor}
        ordered = sorted(jobs.values(), key=lambda job: job.updated_at)
        events = [(job, JobEvent.of(present(self.svc.config, job, wait)))
                  for job, wait in zip(ordered, waits.of_jobs(self.svc, ordered), strict=True)]
        if since is None:
            now = time.monotonic()
            self._first_events = {caller: kept for caller, kept in self._first_events.items()
                                  if now - kept[0] < FIRST_EVENTS_SHARED_SECONDS}
            self._first_events[key_id] = (now, events)
        return events

    def _watch(self) -> None:
        """Mark the running jobs shown as watched; look again at those shown queued (their wait follows the slots)."""
        running: dict[str, str] = {}
        for stream in self._live():
            running.update(stream.running)
        for job_id in running:
            watch(self.svc, job_id)
        self._show([job_id for job_id, status in running.items() if status == st.QUEUED])

    def _keep_alive(self, now: float) -> None:
        for stream in self._live():
            if stream.pending and stream.stuck_since is not None and now - stream.stuck_since > STUCK_SECONDS:
                log.info("stream cut off: its reader took nothing", extra={"job_id": stream.job_id})
                self._close(stream)
            elif not stream.pending and now - stream.last_write >= KEEPALIVE_SECONDS:
                stream.queued += frames.KEEPALIVE
                self._flush(stream)

    def _read(self, stream: Stream) -> None:
        """A stream's client has nothing to send: its end ends the stream, and so does anything it sends (a new
        request on the connection, which a stream never answers: closing tells the client to use another)."""
        assert stream.sock is not None
        try:
            stream.sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._close(stream)

    def _flush(self, stream: Stream) -> None:
        if stream.closed or stream.sock is None:
            return
        stream.wire()
        try:
            sent = stream.sock.send(stream.pending) if stream.pending else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(stream)
            return
        now = time.monotonic()
        if sent:
            del stream.pending[:sent]
            stream.last_write, stream.stuck_since = now, None
        if stream.pending:
            stream.stuck_since = stream.stuck_since or now
            if len(stream.pending) > MAX_PENDING_BYTES:
                self._close(stream)
                return
            self._selector.modify(stream.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, stream)
        elif stream.ending:
            self._close(stream)
        else:
            self._selector.modify(stream.sock, selectors.EVENT_READ, stream)

    def _end(self, stream: Stream) -> None:
        stream.ending = True
        if stream.sock is not None:
            self._flush(stream)

    def _close(self, stream: Stream) -> None:
        if stream.closed:
            return
        stream.closed = True
        if stream.sock is not None:
            try:
                self._selector.unregister(stream.sock)
            except (KeyError, ValueError):
                pass
            try:
                stream.sock.close()
            except OSError:
                pass
        self._forget(stream)

    def _forget(self, stream: Stream) -> None:
        with self._lock:
            self._streams.discard(stream)
            self._everything.discard(stream)
            self._batches.discard(stream)
            followers = self._by_job.get(stream.job_id or "")
            if followers is not None:
                followers.discard(stream)
                if not followers:
                    del self._by_job[stream.job_id or ""]
        try:
            self.svc.store.streams.close(stream.scope, stream.id)
        except Exception:  # Redis away: the lease ends by itself
            log.warning("stream lease not given back; it lapses", extra={"error": "redis"})
