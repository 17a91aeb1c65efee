"""Answers written while their reader reads: a batch's results (JSONL, ZIP), a stored file or video (docs/operating.md "No key
can hold the web").

Such an answer holds its thread for as long as its reader reads, but nothing another caller needs:

* its work permit goes back for good before the first byte (``bulkheads.drop_permit``): the thread waits in the room
  of answers (``ANSWER_ROOM`` a process, threads of their own), not among the permits that serve reads and callbacks;
* a caller is written at most ``MAX_ANSWERS_PER_CALLER`` such answers at once over every web process (leases in Redis,
  ``store.streams``), one more answered ``429`` ``too_many_answers`` with ``Retry-After``; an answer of at most
  ``SMALL_ANSWER_BYTES`` (a thumbnail, most images) is not counted, so a page of pictures is never refused;
* it must be read at ``MIN_ANSWER_RATE`` at least, judged per piece so that a fast start buys no stall later: each piece
  of at most ``PIECE_BYTES`` is handed to the socket with a deadline of its size over that rate (the socket's timeout),
  and a slower reader is cut off. At the default 8 KiB/s a 64 KiB piece has 8 s: a phone on 2G (EDGE, about 25 KiB/s)
  reads three times as fast, while a reader of a 27 MB ZIP at 1 KB/s is cut within 8 s, not after 7.5 hours.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Iterable, Iterator

from flask import Response, request

from fluxhook.core.errors import AnswersBusy, TooManyAnswers
from fluxhook.store.streams import RENEW_SECONDS, StreamLeases

from . import scopes
from .auth import authenticate
from .bulkheads import Room, answers_room, drop_permit
from .context import services

# An answer this small is written without a lease: it is whole in the socket's buffers within one piece's deadline.
SMALL_ANSWER_BYTES = 256 * 1024
# What one write hands the socket at most: small enough that a reader at the least rate takes it within seconds.
PIECE_BYTES = 64 * 1024
RETRY_SECONDS = 5
# gunicorn's environ names the request's socket (its documented ``gunicorn.socket``); the web worker
# (``buffering_worker``) tells a cut answer from a broken connection by the TimeoutError this module's deadline raises.
SOCKET = "gunicorn.socket"


def paced(response: Response, scope: str) -> Response:
    """``response``, written under the rules above for the caller ``scope`` (``scope_of``); refused with
    ``TooManyAnswers`` or ``AnswersBusy`` when it may not be written now."""
    if request.method == "HEAD" or response.status_code not in (200, 206):
        return response
    svc = services()
    lease = None
    size = response.content_length
    if size is None or size > SMALL_ANSWER_BYTES:
        lease = uuid.uuid4().hex
        limit = svc.config.max_answers_per_caller
        if not svc.store.answers.open(scope, lease, limit):
            raise TooManyAnswers(f"this caller is being written {limit} answers already (MAX_ANSWERS_PER_CALLER: "
                                 "ZIPs, result files, videos); read one to its end, then retry",
                                 retry_after=RETRY_SECONDS)
    room = answers_room()
    if not room.take():
        if lease is not None:
            svc.store.answers.close(scope, lease)
        raise AnswersBusy("this web process writes as many answers as it may at once; retry",
                          retry_after=RETRY_SECONDS)
    drop_permit()
    response.response = _Paced(response.response, request.environ.get(SOCKET), svc.config.min_answer_rate, room,
                               svc.store.answers, (scope, lease) if lease else None)
    # Bytes already: werkzeug hands the iterable to the server as it is, and the server's close of it (after the last
    # byte, a cut or a client gone) is the one close: it ends the answer.
    response.direct_passthrough = True
    return response


def scope_of(owner: str | None) -> str:
    """Whose answers these count among: the app key's or admin token's that asks (as its streams count), or, for a
    signed link, the key that owns what it opens (``owner``; None: an admin's)."""
    caller = authenticate()
    return scopes.of_caller(caller) if caller is not None else f"links-{owner or 'admin'}"


class _Paced:
    """The answer's bytes in pieces, each given its deadline on the socket before gunicorn writes it."""

    def __init__(self, inner: Iterable, sock: socket.socket | None, min_rate: int, room: Room, leases: StreamLeases,
                 lease: tuple[str, str] | None):
        self.inner = inner
        self.sock = sock
        self.min_rate = min_rate
        self.room = room
        self.leases = leases
        self.lease = lease  # (scope, id), when counted
        self.renewed = time.monotonic()
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            for start in range(0, len(data), PIECE_BYTES):
                piece = data[start:start + PIECE_BYTES]
                self._pace(len(piece))
                yield piece

    def _pace(self, size: int) -> None:
        if self.sock is not None:
            # sendall's timeout bounds the whole call (Python 3.5+): the piece must be taken within it.
            self.sock.settimeout(max(1.0, size / self.min_rate))
        if self.lease is not None and time.monotonic() - self.renewed >= RENEW_SECONDS:
            self.renewed = time.monotonic()
            self.leases.renew([self.lease])

    def close(self) -> None:
        """Close what made the bytes, and give back the answer's place and lease (once, whichever way it ended)."""
        if self.ended:
            return
        self.ended = True
        try:
            if hasattr(self.inner, "close"):
                self.inner.close()
        finally:
            self.room.give_back()
            if self.lease is not None:
                self.leases.close(*self.lease)
