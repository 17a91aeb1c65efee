"""Receivers of notifications for the tests of notifications: real HTTP servers on 127.0.0.1 that record every POST
(answering 200, 500 while told to fail, or a status scripted per path), and the secret the tests sign with."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import serve_in_thread
from devtools.processes import free_port, wait_until
from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.deliveries import IN_FLIGHT, Attempt
from fluxhook.store.keys import KEYS
from helpers import commands_during

SECRET = "whsec_" + base64.b64encode(b"fluxhook-notify-test-key-32-byte").decode()


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def job(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records POSTs; answers 200, or 500 while ``failures`` lasts, or a status scripted per path (with a
    ``Retry-After`` scripted per path too), each ``delay`` seconds after it came (a receiver that takes its time)."""

    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    retry_after: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks/fluxhook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def for_job(self, job_id: str) -> list[Delivery]:
        """The deliveries of the job's end (``webhook-id: msg_<job id>``)."""
        return self.for_message(f"msg_{job_id}")

    def for_message(self, message_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.headers.get("webhook-id") == message_id]

    def of_job(self, job_id: str) -> list[Delivery]:
        """Every delivery whose webhook-id is one of the job's messages, in the order they came."""
        with self.lock:
            return [d for d in self.deliveries if d.headers.get("webhook-id", "").startswith(f"msg_{job_id}")]

    def wait_for(self, job_id: str, count: int = 1, timeout: float = 30.0) -> list[Delivery]:
        return wait_until(lambda: (lambda found: found if len(found) >= count else None)(self.for_job(job_id)),
                          timeout=timeout, interval=0.05, message=f"{count} notification(s) of {job_id}")

    def answer(self, path: str) -> int:
        with self.lock:
            if self.failures > 0:
                self.failures -= 1
                return 500
        return self.statuses.get(path, 200)


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.answer(self.path)
            with receiver.lock:
                receiver.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                    body, time.time()))
            if receiver.delay:
                time.sleep(receiver.delay)  # the receiver's own work before it answers
            self.send_response(status)
            if self.path in receiver.retry_after:
                self.send_header("Retry-After", receiver.retry_after[self.path])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def receiving(count: int) -> Iterator[list[Receiver]]:
    """``count`` receivers, each a server of its own, shut down on leaving."""
    made = []
    for _ in range(count):
        receiver = Receiver(port=free_port())
        server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler(receiver))
        serve_in_thread(server)
        made.append((receiver, server))
    try:
        yield [receiver for receiver, _ in made]
    finally:
        for _, server in made:
            server.shutdown()
            server.server_close()


def fresh(receiver: Receiver) -> Receiver:
    """The receiver with no failures, scripted answers or delay left by an earlier test."""
    receiver.failures, receiver.statuses, receiver.retry_after, receiver.delay = 0, {}, {}, 0.0
    return receiver


def notified_job(svc, notify_url: str | None) -> Job:
    """A job submitted to BFL that notifies ``notify_url``."""
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 created_at=now, updated_at=now, submitted_at=now, notify_url=notify_url))
    return job


def drain_commands(store, connection, now: float, db: int = 3) -> list[dict]:
    """The commands (but SCRIPT and SELECT) a notifier of two hands sends to database ``db`` to attempt every message
    due at ``now`` in ``store`` (a ``Deliveries``), each attempt ending with no retry."""
    def drain():
        held: list = []
        while True:
            held += store.take(now, 2).attempts
            if not held:
                return
            store.finish(held.pop(0))

    return [c for c in commands_during(connection, db, drain) if c["command"].split()[0] not in ("SCRIPT", "SELECT")]


def ended(store, member: str, due: float | None = None) -> bool:
    """The attempt of ``member`` under way ends as its own process ends it (showing the lease its note holds), its
    message due again at ``due`` (None: not); whether it held the message (no note: none under way)."""
    lease = store.connection.hget(KEYS.notify_busy, IN_FLIGHT + member)
    return store.finish(Attempt(member, lease.decode() if lease else ""), due)


def add_due(store, messages) -> list[str]:
    """Each (message, when) of ``messages`` kept in ``store`` (a ``Deliveries``) and due at ``when``, in one MULTI, no
    notifier woken; their members."""
    pipe = store.connection.pipeline(transaction=True)
    for message, at in messages:
        store.add(message, None, pipe)
        store.schedule([message], at, pipe, wake=False)
    pipe.execute()
    return [message.member for message, _ in messages]
