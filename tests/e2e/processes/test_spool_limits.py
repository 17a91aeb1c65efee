"""Request bodies cannot fill the disk or the memory, against the Procfile's web process over real
sockets on 127.0.0.1: a body sent fast and then trickled is cut off (408) and its spool file freed, with or
without credentials; the bodies held at once never pass MAX_SPOOL_BYTES, the next one is answered 503 with
Retry-After at once, and callbacks still get through.

What the process holds is read from outside it: the sizes of the files in its spool directory (TMPDIR) that
it holds open, from /proc (receiver/request_assembly.py keeps the count inside).
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import API_TOKEN, STATIC_SECRET, service_env
from devtools.hostile_clients import spooled_bytes
from devtools.processes import free_port, wait_until
from devtools.stack import Stack
from helpers import read_answer, status_of, web_worker_pids

MIB = 1024 * 1024
MAX_SPOOL_BYTES = 8 * MIB
# The contract: no connection holds spooled bytes past 30 s below MIN_BODY_RATE (the default, 64 KiB/s, here).
CUT_WITHIN = 30.0


@pytest.fixture(scope="module")
def spool_web(redis_server, simulator, _spies, tmp_path_factory):
    """The Procfile's web process alone, one process (so every connection meets the same budget), with a small
    MAX_SPOOL_BYTES and a spool directory of its own. Its port, its one worker's pid, the spool directory."""
    var_dir = Path(tmp_path_factory.mktemp("spool-web"))
    spool_dir = var_dir / "spool"
    spool_dir.mkdir()
    env = dict(os.environ, **service_env(redis_server, simulator, _spies[0].port, free_port(),
                                         STORAGE_URL=f"file://{var_dir / 'images'}", WEB_CONCURRENCY="1",
                                         MAX_SPOOL_BYTES=str(MAX_SPOOL_BYTES), TMPDIR=str(spool_dir)))
    web = Stack(env=env, var_dir=var_dir)
    web.start("web")
    try:
        (pid,) = web_worker_pids(web)
        yield int(env["PORT"]), int(pid), spool_dir
    finally:
        web.stop()


def _head(path: str, length: int | None, headers: str = "", method: str = "POST") -> bytes:
    framing = f"Content-Length: {length}\r\n" if length is not None else "Transfer-Encoding: chunked\r\n"
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"{headers}{framing}\r\n").encode()


def _open(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _answered_at_once(sock: socket.socket, timeout: float = 1.0) -> bytes:
    """What the server answers within ``timeout`` (and until it closes): empty if it waits for more."""
    return read_answer(sock, timeout)




def _trickle_until_answered(socks: list[socket.socket], interval: float, timeout: float) -> dict[int, float]:
    """One byte to each socket every ``interval`` s until the server answers it: when each was answered (by index)."""
    answered: dict[int, float] = {}
    answers = {n: b"" for n in range(len(socks))}
    deadline = time.monotonic() + timeout
    next_drip = time.monotonic() + interval
    while len(answered) < len(socks) and time.monotonic() < deadline:
        waiting = [sock for n, sock in enumerate(socks) if n not in answered]
        readable, _, _ = select.select(waiting, [], [], max(0.0, min(next_drip, deadline) - time.monotonic()))
        for sock in readable:
            n = socks.index(sock)
            answered[n] = time.monotonic()
            answers[n] = _answered_at_once(sock)
        if time.monotonic() >= next_drip:
            next_drip += interval
            for n, sock in enumerate(socks):
                if n not in answered:
                    sock.send(b"x")
    return {n: (at, answers[n]) for n, at in answered.items()}


TRICKLED = [
    ("/signin", "", "POST"),
    ("/healthz", "", "GET"),  # any request's body is held while it arrives, a GET's too
    ("/v1/jobs", "Authorization: Bearer {app_key}\r\n", "POST"),  # credentials buy no more time: an app key's
    ("/v1/jobs", f"Authorization: Bearer {API_TOKEN}\r\n", "POST"),  # nor an admin token's
]


def test_a_body_sent_fast_then_trickled_is_cut_off_and_its_spool_freed(spool_web):
    port, pid, spool_dir = spool_web
    fast, length = MIB, 2 * MIB
    created = requests.post(f"http://127.0.0.1:{port}/v1/keys", json={"name": "trickler"}, timeout=10,
                            headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert created.status_code == 201, created.text
    socks = []
    try:
        for path, headers, method in TRICKLED:
            head = _head(path, length, headers.format(app_key=created.json()["key"]), method)
            socks.append(_open(port, head + b"x" * fast))
        filled = time.monotonic()
        # Held on the disk: the spool files of what they sent.
        wait_until(lambda: spooled_bytes(pid, spool_dir) >= len(socks) * fast, timeout=10, interval=0.05,
                   message="the web process to spool what the clients sent")

        # A byte every 2 s each: below any rate, but never a pause.
        answered = _trickle_until_answered(socks, interval=2.0, timeout=CUT_WITHIN + 5)

        assert sorted(answered) == list(range(len(socks))), "every trickling client is cut off"
        for n, (at, answer) in answered.items():
            assert status_of(answer) == 408, (TRICKLED[n], answer[:200])
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
            assert at - filled <= CUT_WITHIN, TRICKLED[n]
        # Its bytes freed at once: the spool files are gone.
        wait_until(lambda: spooled_bytes(pid, spool_dir) == 0, timeout=5, interval=0.02,
                   message="the spool files to be freed")
    finally:
        for sock in socks:
            sock.close()


class _Peak:
    """Samples what the process holds in its spool directory, every 10 ms, in a thread; ``peak``: the most seen."""

    def __init__(self, pid: int, spool_dir: Path):
        self.pid, self.spool_dir = pid, spool_dir
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_Peak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, spooled_bytes(self.pid, self.spool_dir))


def test_bodies_held_at_once_never_pass_max_spool_bytes_and_callbacks_still_get_through(spool_web):
    port, pid, spool_dir = spool_web
    # Each client sends one chunk of 1.5 MiB (its size line included) of a body it never ends, and holds it:
    # 8 of them ask for 12 MiB, and MAX_SPOOL_BYTES less the room kept for callbacks is 6 MiB.
    part = 3 * MIB // 2
    chunk = b"%x\r\n" % (part - 8) + b"x" * (part - 8)
    held: list[socket.socket] = []
    refused: list[bytes] = []
    with _Peak(pid, spool_dir) as sampled:
        try:
            for _ in range(8):  # one after the other, each taken (or refused) before the next
                sock = _open(port, _head("/signin", None))
                try:
                    sock.sendall(chunk)
                except OSError:
                    pass  # refused mid-body: the answer is read below
                answer = _answered_at_once(sock, timeout=0.3)
                if answer:
                    refused.append(answer)
                    sock.close()
                    continue
                held.append(sock)
                wait_until(lambda: spooled_bytes(pid, spool_dir) >= len(held) * part, timeout=10, interval=0.02,
                           message="the web process to spool what was sent")
            # With the room taken, a body announced by its length is refused at once, before it is sent.
            with _open(port, _head("/signin", MIB)) as announced:
                refused_at_once = _answered_at_once(announced)
            # Callbacks get through all the same: a large one (spooled) and a small one.
            callbacks = [requests.post(f"http://127.0.0.1:{port}/webhooks/bfl", timeout=10, data=json.dumps(
                {"id": f"spool-{n}", "status": "Pending", "pad": "x" * size}),
                headers={"Content-Type": "application/json", "X-Webhook-Secret": STATIC_SECRET})
                for n, size in enumerate((300_000, 10))]
            holding = spooled_bytes(pid, spool_dir)
        finally:
            for sock in held:
                sock.close()
        # Once the held ones are gone, their room is given back.
        wait_until(lambda: spooled_bytes(pid, spool_dir) == 0, timeout=5, interval=0.02,
                   message="the spool files to be freed")
        with _open(port, _head("/signin", 2 * MIB) + b"x" * 2 * MIB) as again:
            taken_again = _answered_at_once(again, timeout=5)

    assert len(held) == 4 and holding >= 4 * part - 32, (len(held), holding)
    assert sampled.peak <= MAX_SPOOL_BYTES, sampled.peak
    assert len(refused) == 4
    for answer in [*refused, refused_at_once]:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert status_of(answer) == 503, head
        assert b"\r\nRetry-After: " in head
        assert json.loads(body)["error"]["code"] == "unavailable"
    assert [response.status_code for response in callbacks] == [202, 202], [r.text for r in callbacks]
    assert status_of(taken_again) != 503


def test_a_body_larger_than_the_process_ever_holds_is_refused_before_it_is_sent(spool_web):
    port, _, _ = spool_web
    with _open(port, _head("/signin", MAX_SPOOL_BYTES)) as sock:
        answer = _answered_at_once(sock)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "payload_too_large"
