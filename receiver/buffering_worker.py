"""gunicorn's threaded worker, with every request received whole before a thread serves it.

gunicorn's ``gthread`` worker hands a connection to a thread at its first byte, and the thread waits on the socket, with
no deadline, for the rest: a few hundred slow clients (slowloris) hold every thread. Here a thread takes what the socket
holds without blocking and hands the connection back to the main loop, which watches every connection with one
``select`` until the request is whole: its head within ``HEAD_SECONDS``, its body at ``MIN_BODY_RATE`` at least over any
10 s, or it is answered 408 and closed. Only a whole request is served, from memory, so no work permit
(``receiver/bulkheads.py``) is held while a body trickles in; what bodies still arriving hold is bounded, and one
announced too large is refused (413) unread (``receiver/request_assembly.py``). A request that arrives in one piece
(nearly all) is taken and served by one thread in one go, as in ``gthread``.

Closing is done by the main loop without waiting too: gunicorn's graceful close waits up to 2 s per socket for the
client's FIN on the main loop, so a few clients that never close would stall it. Here a connection to close is
half-closed and watched with the others until the client closes or ``LINGER_SECONDS`` pass.

A stream of job events (``receiver/events.py``) is answered by a thread like any request, but only its head and
first bytes: the app hands its connection over in the environ (``events.HAND_OVER``) and the worker gives the socket
to the process's hub of streams (``receiver/stream_hub.py``), which writes the rest without a thread of its own.

TLS and HTTP/2 are not served (fluxhook runs plain HTTP/1.1 behind the platform's TLS): the worker refuses either.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from receiver.events import HAND_OVER, HAND_OVER_READY, STREAM_PATH
from receiver.request_assembly import (
    CONTINUE,
    MAX_REQUEST_BYTES,
    BodyLimits,
    BodyPace,
    Refused,
    RequestAssembler,
    SpoolSpace,
    refusal,
)
from receiver.request_input import join_repeated

# A request's head (request line and headers) must be in within this many seconds of its first
# byte (of the connection's opening, for its first request).
HEAD_SECONDS = 10.0
# How long a closing connection waits for the client's FIN (its last bytes are read and dropped).
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024
# One read from a client: a socket that has more stays readable and is read again next turn, so
# one fast upload cannot keep the loop from the others.
RECV_BYTES = 256 * 1024
RECVS_PER_TURN = 4
# What a thread tells the main loop when the request is not whole: wait for more bytes; the
# client closed; the request was refused (the answer is sent); it was refused for now, its answer held back.
_WAIT, _GONE, _REFUSED, _HELD = object(), object(), object(), object()
# A refusal from the head for now (429, 503) is answered this long after the head came (give or take the loop's turn),
# watched meanwhile by the loop alone: a client ignoring Retry-After sends a request or two a second a connection, not
# hundreds, and refusing it does not take the cores from other keys' requests. At most HELD_MOST are held at once a
# process; past it a refusal is answered at once.
HOLD_SECONDS = 0.5
HELD_MOST = 256
_HOLDING = (b"HTTP/1.1 429 ", b"HTTP/1.1 503 ")
# The deadlines are checked this often (and on every turn of the loop, which wakes once a second).
SWEEP_SECONDS = 0.25


class BufferedConn(TConn):
    """A client connection and the request being received on it."""

    def __init__(self, cfg, sock, client, server, max_body: int, spool: SpoolSpace):
        super().__init__(cfg, sock, client, server)
        self.max_body = max_body
        self.spool = spool
        self.incoming: RequestAssembler | None = None
        self.pace: BodyPace | None = None  # the body's, once the head is in
        self.deadline = 0.0
        self.continue_sent = False
        self.head_checked = False
        self.kept_alive = False
        self.must_close = False
        self.lingering = False
        self.linger_read = 0
        self.registered = False
        self.dropped = False
        self.handed_over = False  # a stream's: the hub of streams owns the socket now
        self.cut = False  # its answer's reader fell below MIN_ANSWER_RATE: reset, not closed
        self.held_answer: bytes | None = None  # a refusal from the head, sent at its deadline (HOLD_SECONDS)
        # Every request is parsed from the bytes received (a parser of its own, made on dispatch):
        # gunicorn's per-connection set-up, which reads from the socket, is not wanted.
        self.initialized = True

    def next_request(self, leftover: bytes = b"") -> RequestAssembler:
        if self.incoming is not None:
            self.incoming.discard()
        self.incoming = RequestAssembler(self.max_body, spool=self.spool)
        self.pace = None
        self.continue_sent = False
        self.head_checked = False
        if leftover:
            self.incoming.feed(leftover)
        return self.incoming


class BufferingWorker(ThreadWorker):
    """``gthread``, with threads that never wait on a client: the main loop watches until a request is whole."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.receiving: set[BufferedConn] = set()
        self.held = 0  # connections whose refusal is held back (_hold)
        self.next_sweep = 0.0
        self.stopping_since: float | None = None
        self._set_body_limits(BodyLimits())

    def load_wsgi(self):
        super().load_wsgi()
        # The app read MAX_SPOOL_BYTES and MIN_BODY_RATE with the rest of its configuration (receiver.create_app).
        self._set_body_limits(getattr(self.wsgi, "body_limits", None) or BodyLimits())

    def _set_body_limits(self, limits: BodyLimits) -> None:
        self.spool = SpoolSpace(limits.max_spool_bytes)  # this process's: each web process has its own
        self.min_body_rate = limits.min_body_rate
        self.max_body = min(MAX_REQUEST_BYTES, self.spool.largest_body)

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        if cfg.is_ssl or cfg.http2_cleartext != "off" or "h2" in cfg.http_protocols:
            raise RuntimeError("receiver.buffering_worker serves plain HTTP/1.1 only: no certfile, no HTTP/2")

    # -- connections in

    def accept(self, listener):
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = BufferedConn(self.cfg, client_sock, client_addr, listener.getsockname(), self.max_body, self.spool)
        conn.next_request()
        conn.deadline = time.monotonic() + HEAD_SECONDS
        self._wait_for_bytes(conn)

    def _wait_for_bytes(self, conn: BufferedConn) -> None:
        """Watch the connection with the others, under its deadline, until it has bytes for a thread to take."""
        # Checked here too, not only by the sweep: a client that sends just often enough would
        # otherwise always be with a thread when the sweep runs.
        if conn.deadline <= time.monotonic():
            self._expire(conn)
            return
        self._watch(conn, self._on_readable)

    def _watch(self, conn: BufferedConn, callback) -> None:
        """Watch the connection with the others until ``callback`` or its deadline (the sweep's ``receiving``)."""
        self.receiving.add(conn)
        if conn.registered:
            self.poller.modify(conn.sock, selectors.EVENT_READ, partial(callback, conn))
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(callback, conn))
            conn.registered = True

    def _unwatch(self, conn: BufferedConn) -> None:
        self.receiving.discard(conn)
        if conn.registered:
            conn.registered = False
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _on_readable(self, conn: BufferedConn, _sock) -> None:
        # A thread takes the bytes (a read that never waits), as gthread's threads read requests:
        # the main loop only watches, so it does no more per request than gthread's does.
        self._unwatch(conn)
        self.enqueue_req(conn)

    def handle(self, conn):
        """In a thread: take what the client has sent, without waiting; serve the request once whole."""
        incoming = conn.incoming
        assert incoming is not None  # made when the connection was taken (next_request)
        if not incoming.complete:
            outcome = self._take_bytes(conn)
            if outcome is not None:
                return outcome
        conn.must_close = conn.must_close or incoming.head_only
        conn.parser = http.get_parser(self.cfg, incoming.pieces(conn.continue_sent), conn.client)
        return super().handle(conn)  # gunicorn's own, reading the request from memory, never the socket

    def handle_request(self, req, conn):
        # Before gunicorn makes the environ, which joins a repeated header's values with ',' (a name may hold one).
        join_repeated(req.headers)
        if conn.must_close:
            req.must_close = True  # the answer says so: the connection ends after it
        if req.method == "GET" and STREAM_PATH.fullmatch(req.path or ""):
            return self._handle_stream(req, conn)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            # A paced answer's piece was not taken within its deadline (receiver/answers.py): the reader is below
            # MIN_ANSWER_RATE. Its connection is reset, not closed: a close would leave the megabytes already in the
            # socket's buffers to trickle out to it for hours, held by the kernel.
            self.log.info("answer cut: its reader took less than MIN_ANSWER_RATE")
            conn.cut = True
            raise StopIteration() from None

    def _handle_stream(self, req, conn: BufferedConn) -> bool:
        """gunicorn's ``handle_request`` for a stream: the app's answer begins it, and once the app handed it over
        (``events.HAND_OVER``) the socket goes to the hub of streams instead of back to the loop. Returns False."""
        environ: Any = {}
        resp = None
        handed = None
        try:
            self.cfg.pre_request(self, req)
            resp, environ = wsgi.create(req, conn.sock, conn.client, conn.server, self.cfg)
            environ["wsgi.multithread"] = True
            environ[HAND_OVER_READY] = True
            self.nr += 1
            app: Any = self.wsgi
            answer = app(environ, resp.start_response)
            # Read before the first write: a client gone by then must still give its stream's lease back (below).
            handed = environ.get(HAND_OVER)
            try:
                for item in answer:
                    resp.write(item)
                if handed is None:
                    resp.close()  # not a stream after all (404, 429...): a plain answer
                else:
                    resp.send_headers()
            finally:
                if hasattr(answer, "close"):
                    answer.close()  # the work permit goes back here
            if handed is not None:
                hub, stream = handed
                hub.attach(stream, conn.sock, resp.chunked)
                conn.handed_over = True
                return False
            return not resp.should_close()
        finally:
            if handed is not None and not conn.handed_over:
                handed[0].abandon(handed[1])
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")

    def _take_bytes(self, conn: BufferedConn):
        """Feed the request what the socket holds; None once it is whole, else what the main loop does next."""
        incoming = conn.incoming
        assert incoming is not None  # made when the connection was taken (next_request)
        received = False
        for _ in range(RECVS_PER_TURN):
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                return _GONE
            if not data:
                return _GONE
            received = True
            if conn.kept_alive and not incoming.started:
                # A kept-alive connection's next request: the head's clock starts with its first byte.
                conn.deadline = time.monotonic() + HEAD_SECONDS
            try:
                incoming.feed(data)
            except Refused as refused:
                self._send_quietly(conn, refusal(refused.status, callback=incoming.callback))
                return _REFUSED
            if incoming.waits_for_body and not conn.head_checked and self._refused_from_head(conn, incoming):
                return _HELD if conn.held_answer is not None else _REFUSED
            if incoming.complete:
                return None
            if len(data) < RECV_BYTES:
                break
        if incoming.waits_for_body and received:
            now = time.monotonic()
            if conn.pace is None:
                conn.pace = BodyPace(now, self.min_body_rate)
            conn.pace.update(now, incoming.body_received)
            conn.deadline = conn.pace.deadline(now)
            if incoming.expects_continue and not conn.continue_sent and incoming.body_received == 0:
                conn.continue_sent = True
                self._send_quietly(conn, CONTINUE)
        return _WAIT

    def _refused_from_head(self, conn: BufferedConn, incoming: RequestAssembler) -> bool:
        """Judge a request whose head is in and whose body is still coming, once: True when the app's answer
        (``answer_before_body``) was sent and its body is never to be read (the answer says Connection: close); else its
        body is received, or the head alone handed on for the app to refuse (``refused_before_body``)."""
        conn.head_checked = True
        answer_before_body = getattr(self.wsgi, "answer_before_body", None)
        answer = None if answer_before_body is None else answer_before_body(*incoming.request_line(), incoming.header)
        if answer is not None:
            if answer.startswith(_HOLDING) and self.held < HELD_MOST:
                conn.held_answer = answer
            else:
                self._send_quietly(conn, answer)
            return True
        refused = getattr(self.wsgi, "refused_before_body", None)
        if refused is not None and refused(*incoming.request_line()):
            incoming.head_alone()
        return False

    # -- answers out

    def finish_request(self, conn, fs):
        """A thread is done with the connection (called on the main loop): wait for more, or close."""
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:
            result = False
        if conn.handed_over:
            self._drop(conn, close=False)  # the hub of streams owns its socket
        elif conn.cut:
            self._reset(conn)
        elif result is _WAIT:
            self._wait_for_bytes(conn)
        elif result is _HELD:
            self._hold(conn)
        elif result is _GONE:
            self._drop(conn)
        elif result is _REFUSED or not result or conn.must_close or not self.alive:
            self._close(conn)
        else:
            self._next_request(conn)

    def _next_request(self, conn: BufferedConn) -> None:
        conn.sock.setblocking(False)
        assert conn.incoming is not None  # the request just answered
        try:
            incoming = conn.next_request(conn.incoming.leftover)
        except Refused as refused:
            self._refuse(conn, refusal(refused.status))
            return
        now = time.monotonic()
        conn.kept_alive = True
        if incoming.started:  # pipelined: the next request's bytes are here already
            conn.deadline = now + HEAD_SECONDS
            self.enqueue_req(conn)
            return
        conn.deadline = now + self.cfg.keepalive  # keep-alive, until its first byte
        self._wait_for_bytes(conn)

    def _hold(self, conn: BufferedConn) -> None:
        """Keep a refused connection on the loop until its answer is due (``_expire`` sends it); what the client
        sends meanwhile is read and dropped, as a closing connection's is."""
        self.held += 1
        conn.deadline = time.monotonic() + HOLD_SECONDS
        self._watch(conn, self._on_held_readable)

    def _on_held_readable(self, conn: BufferedConn, _sock) -> None:
        if self._drained(conn) == b"":  # the client gave up: nothing to answer
            self._drop(conn)

    @staticmethod
    def _drained(conn: BufferedConn) -> bytes | None:
        """What the client sent, read to be dropped: b"" once it closed (or its socket failed), None if nothing yet."""
        try:
            return conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def _let_go(self, conn: BufferedConn) -> bytes | None:
        answer, conn.held_answer = conn.held_answer, None
        if answer is not None:
            self.held -= 1
        return answer

    def _refuse(self, conn: BufferedConn, answer: bytes) -> None:
        self._send_quietly(conn, answer)
        self._close(conn)

    @staticmethod
    def _send_quietly(conn: BufferedConn, data: bytes) -> None:
        """Best effort, without waiting: an answer the socket cannot take at once is dropped."""
        try:
            conn.sock.setblocking(False)
            conn.sock.send(data)
        except OSError:
            pass

    def _close(self, conn: BufferedConn) -> None:
        """Half-close and let the client's last bytes drain, on the loop with the rest (RFC 9112, section 9.6)."""
        if conn.incoming is not None:
            conn.incoming.discard()
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._drop(conn)
            return
        conn.lingering = True
        conn.deadline = time.monotonic() + LINGER_SECONDS
        self._watch(conn, self._on_linger_readable)

    def _on_linger_readable(self, conn: BufferedConn, _sock) -> None:
        data = self._drained(conn)
        if data is None:
            return
        conn.linger_read += len(data)
        if not data or conn.linger_read > LINGER_BYTES:
            self._drop(conn)

    def _reset(self, conn: BufferedConn) -> None:
        """Close with a reset (SO_LINGER 0): what the socket's buffers still hold for the client is dropped."""
        try:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._drop(conn)

    def _drop(self, conn: BufferedConn, *, close: bool = True) -> None:
        self._let_go(conn)
        self._unwatch(conn)
        if conn.incoming is not None:
            conn.incoming.discard()
        if not conn.dropped:
            conn.dropped = True
            self.nr_conns -= 1
            if close:
                conn.close()

    # -- deadlines

    def murder_pending(self):
        """Run on every turn of gunicorn's loop: connections past their deadline are answered 408 and closed."""
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_SECONDS
        if not self.alive and self.stopping_since is None:
            self.stopping_since = now
        for conn in [c for c in self.receiving if c.deadline <= now or self._idle_while_stopping(c, now)]:
            self._expire(conn)

    def _expire(self, conn: BufferedConn) -> None:
        answer = self._let_go(conn)
        if answer is not None:
            self._refuse(conn, answer)
        elif conn.lingering:
            self._drop(conn)
        elif conn.incoming is not None and conn.incoming.started:
            self._refuse(conn, refusal(408))
        else:
            self._drop(conn)  # kept alive with nothing sent: closed as gunicorn closes it

    def _idle_while_stopping(self, conn: BufferedConn, now: float) -> bool:
        # A stopping worker gives a connection 2 s to finish sending a head, as gunicorn's gives an
        # idle one; a body under way may finish within its deadline (and the graceful timeout).
        return (self.stopping_since is not None and now - self.stopping_since >= LINGER_SECONDS
                and not conn.lingering and conn.incoming is not None and not conn.incoming.head_complete)
