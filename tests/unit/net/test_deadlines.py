"""One deadline for a whole exchange (fluxhook/net/deadlines.py), against real sockets on 127.0.0.1: a server that
trickles its answer a byte at a time, one that never answers, one that answers at once."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from devtools.slow_receivers import SILENT, TRICKLE, SlowReceiver
from fluxhook.core.hosts import Target
from fluxhook.net.deadlines import DeadlinePassed, within
from fluxhook.net.http_client import HTTPClient


class _Server:
    """Answers each connection with ``answer(conn)`` in a thread of its own."""

    def __init__(self, answer):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            conn.recv(65536)
            self.answer(conn)
        except OSError:
            pass
        finally:
            conn.close()
            self.closed.set()

    def stop(self):
        self.sock.close()


def _prompt(conn):
    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture()
def client():
    return HTTPClient()


def _post(client, server, timeout=(5.0, 5.0)):
    """POST to ``server`` (anything with a ``port``) as the notifier does."""
    target = Target(url=f"http://127.0.0.1:{server.port}/hook", scheme="http", host="127.0.0.1", port=server.port,
                    exact=True)
    return client.session_for(target).post(target.url, data=b"{}", timeout=timeout, headers={"Connection": "close"})


@pytest.mark.parametrize("mode", [TRICKLE, SILENT])
def test_a_receiver_that_trickles_or_never_answers_is_cut_at_the_deadline(client, mode):
    server = SlowReceiver(mode, every=0.3)  # a byte every 0.3 s: each read ends well within any read timeout
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        with within(1.5):
            _post(client, server)
    took = time.monotonic() - started
    # Per-read timeouts of 5 s would have let the trickle run for ever, and the silent one 5 s.
    assert 1.5 <= took < 4.0
    assert server.wait_closed(5), "the connection was left open at the receiver"
    server.stop()


def test_an_answer_within_the_deadline_is_untouched_and_a_later_exchange_is_not_cut_by_it(client):
    first_deadline = 2.0  # room for a loaded host's scheduling: the answer is at once
    first_ends = time.monotonic() + first_deadline

    def late(conn):  # the receiver's own pace: answered past the first exchange's deadline, inside the second's
        time.sleep(max(0.0, first_ends + 0.5 - time.monotonic()))
        _prompt(conn)

    prompt, late_server = _Server(_prompt), _Server(late)
    with within(first_deadline):
        first = _post(client, prompt)
    with within(first_deadline + 5.0):
        second = _post(client, late_server)
    prompt.stop()
    late_server.stop()
    assert (first.status_code, second.status_code) == (204, 204)
    assert time.monotonic() >= first_ends + 0.5  # the second exchange ran on past the first one's deadline


def test_a_deadline_passed_is_a_requests_timeout_for_callers_that_retry_timeouts():
    assert issubclass(DeadlinePassed, requests.Timeout)
