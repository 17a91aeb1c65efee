"""One HTTP/1.1 request assembled from the bytes a client sends, before any thread serves it, and the limits on
what its body costs the process while it arrives, which no caller can bend.

The web worker (``receiver/buffering_worker.py``) feeds a connection's bytes to a ``RequestAssembler`` and hands the
request to a thread once it is whole: its head, and its body by ``Content-Length`` or to the last chunk. Only where the
request ends is parsed here; gunicorn's own parser then reads it from memory (or from the spool file a large body went
to), with all its checks. A request whose framing cannot be told (``Content-Length`` unreadable, a transfer coding other
than chunked) goes on as its head alone, its connection closed after the answer: gunicorn refuses such a head unread.

Until a body is in, the process holds its bytes (in memory, in a temporary file past ``MEMORY_BODY_BYTES``), and anyone
can send one (the sign-in form, a key-shaped token on ``/v1``, the static callback URL), so two rules bound that cost:

- ``SpoolSpace``: the bytes one web process holds for bodies still arriving, in total (``MAX_SPOOL_BYTES``).
  Every byte stored is taken from it and given back once the request is handed on or dropped; a body that would
  pass it is refused at once (503 with Retry-After). Callbacks never are: a room is kept for them that other
  bodies cannot take, and each holds at most ``CALLBACK_BODY_BYTES``.
- ``BodyPace``: a body must keep arriving at ``MIN_BODY_RATE`` at least, averaged over any
  ``RATE_WINDOW_SECONDS`` (a sliding window: bytes sent fast at first buy no time later). Below it, the
  connection is answered 408 and its bytes are freed, however much it sent before.

Both are plain objects with no sockets and no clock of their own: the worker passes the time.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import IO, Iterator
from urllib.parse import unquote

from fluxhook.bfl.reports import CALLBACK_TOO_LARGE, MAX_CALLBACK_BYTES
from fluxhook.core.chunks import CHUNK
from fluxhook.core.config import field_default
from fluxhook.core.end_users import HEADER as END_USER_HEADER
from receiver.errors import closing_answer
from receiver.request_input import REPEATED

# What BFL accepts in one request: FLUX 3 video's keyframes (10 images of 20 MB, as base64 about 267 MB)
# or FLUX.2's 8 reference images; the webhook endpoints cap themselves at 1 MiB.
MAX_REQUEST_BYTES = 256 * 1024 * 1024

# A body is judged on what it sent in the last this many seconds, first one window after its head is in.
RATE_WINDOW_SECONDS = 10.0
# Bytes received this close together are counted as one receipt: at most 40 of them per window and body.
_GRAIN_SECONDS = 0.25
# Where BFL calls back (receiver/webhooks.py: the static URL, and the per-job ones under it).
CALLBACK_PATH = "/webhooks/bfl"
# A callback's body is at most MAX_CALLBACK_BYTES (the app refuses more, 413); this leaves room for a chunked
# body's framing. Past it, the worker refuses the callback itself, before storing more.
CALLBACK_BODY_BYTES = MAX_CALLBACK_BYTES + 64 * 1024
# Room kept for callbacks out of MAX_SPOOL_BYTES (a quarter of it, at most 64 large callbacks' worth):
# other bodies stop short of it, so a callback always finds room.
CALLBACK_ROOM = 64 * CALLBACK_BODY_BYTES
# What a refused body is told to wait: by then the bodies held have arrived, or been cut off by the pace rule.
SPOOL_RETRY_SECONDS = RATE_WINDOW_SECONDS


@dataclass(frozen=True)
class BodyLimits:
    """``MAX_SPOOL_BYTES`` and ``MIN_BODY_RATE``, as the app's configuration says (``receiver.create_app``)."""

    max_spool_bytes: int = field_default("max_spool_bytes")
    min_body_rate: int = field_default("min_body_rate")


def is_callback(method: str, target: str) -> bool:
    """Whether a request (its method and request-target) is a callback from BFL, by its path."""
    path = unquote(target.partition("?")[0])
    return method == "POST" and (path == CALLBACK_PATH or path.startswith(CALLBACK_PATH + "/"))


class SpoolSpace:
    """The bytes one web process holds for request bodies still arriving, against ``limit`` (``MAX_SPOOL_BYTES``);
    shared by the worker's threads (each feeds the requests of its connection), so guarded by a lock."""

    def __init__(self, limit: int):
        self.limit = limit
        self.callback_room = min(CALLBACK_ROOM, limit // 4)
        self.held = 0
        self._lock = threading.Lock()

    @property
    def largest_body(self) -> int:
        """The most one body other than a callback may hold: a larger one could never be taken (413)."""
        return self.limit - self.callback_room

    def has_room(self, size: int, callback: bool) -> bool:
        """Whether a body of ``size`` more bytes would be taken now (asked once its length is announced)."""
        return callback or self.held + size <= self.largest_body

    def acquire(self, size: int, callback: bool) -> bool:
        """Hold ``size`` more bytes of a body, unless that would pass the limit; a callback's always (its room)."""
        with self._lock:
            if not self.has_room(size, callback):
                return False
            self.held += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.held -= size


class BodyPace:
    """How much of one body arrived over the last ``RATE_WINDOW_SECONDS``, which must be ``min_rate`` a second at
    least, judged first one window after ``started`` (when the head was in)."""

    def __init__(self, started: float, min_rate: int):
        self.started = started
        self.need = min_rate * RATE_WINDOW_SECONDS  # the bytes every window must hold
        self.counted = 0
        self._recent: deque[list] = deque()  # [time, bytes] receipts within the last window, oldest first

    def update(self, now: float, received: int) -> None:
        """The body has ``received`` bytes in all by ``now``."""
        new, self.counted = received - self.counted, received
        if new <= 0:
            return
        if self._recent and now - self._recent[-1][0] < _GRAIN_SECONDS:
            self._recent[-1][1] += new
        else:
            self._recent.append([now, new])

    def deadline(self, now: float) -> float:
        """When, if nothing more comes, the last window holds fewer than ``need`` bytes: the body is cut off then."""
        while self._recent and self._recent[0][0] <= now - RATE_WINDOW_SECONDS:
            self._recent.popleft()
        in_window = sum(size for _, size in self._recent)
        below = now
        # Each receipt leaves the window one window after it came: the first one whose leaving takes the
        # window below the need sets the deadline.
        for at, size in self._recent:
            if in_window < self.need:
                break
            in_window -= size
            below = at + RATE_WINDOW_SECONDS
        return max(below, self.started + RATE_WINDOW_SECONDS)


# Larger than any head a client of fluxhook sends (a callback's is well under 2 KiB), far below
# what gunicorn's limits would let one connection make a worker hold (100 fields of 8 KiB).
MAX_HEAD_BYTES = 64 * 1024
# A body up to this size stays in memory; a larger one goes to a temporary file as it arrives, so
# a thousand connections each stalled near the end of a large body hold little memory.
MEMORY_BODY_BYTES = 128 * 1024
# What one chunk-size or trailer line may take (chunk extensions included).
MAX_CHUNK_LINE = 4096

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_FRAMING = re.compile(rb"\n(content-length|transfer-encoding|expect)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue[ \t]*\r?(?=\n)", re.IGNORECASE)

# gunicorn's and the worker's refusals, made before the app sees a request: the same JSON error shape
# as the app's (receiver/errors.py). None quotes the request: its path may carry a webhook token.
REFUSALS = {
    400: ("bad_request", "the request is not valid HTTP/1.1"),
    403: ("forbidden", "the request is forbidden"),
    408: ("request_timeout", "the request did not arrive in time; send it again at a steady pace"),
    413: ("payload_too_large", f"the request body is over fluxhook's limit of {MAX_REQUEST_BYTES // 2**20} MiB (less "
                               "where MAX_SPOOL_BYTES is set lower): send less "
                               "(for inputs, BFL takes image URLs instead of base64 too)"),
    414: ("uri_too_long", f"the request line (method, path and query) is longer than {MAX_HEAD_BYTES // 1024} KiB"),
    417: ("expectation_failed", "the Expect header's expectation cannot be met"),
    431: ("request_header_fields_too_large", "the request's headers are too large"),
    501: ("not_implemented", "the request's transfer coding is not supported"),
    503: ("unavailable", "this web process holds as many request bodies as it may (MAX_SPOOL_BYTES); send the "
                         "request again after Retry-After"),
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def refusal(status: int, reason: str | None = None, *, callback: bool = False) -> bytes:
    """A whole HTTP/1.1 answer refusing a request, with the JSON error body; the connection then closes.
    ``callback``: the request is a BFL callback, whose bodies have a limit of their own."""
    code, message = REFUSALS.get(status, ("internal_error", "an unexpected error occurred"))
    if callback and status == 413:
        message = CALLBACK_TOO_LARGE
    # A 503 is the spool space's refusal: the client may try again once bodies held have gone.
    return closing_answer(status, {"error": {"code": code, "message": message}},
                          SPOOL_RETRY_SECONDS if status == 503 else None, reason)


class Refused(Exception):
    """The request cannot be taken; ``status`` says why (the answer is ``refusal(status)``)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Chunks:
    """Where a chunked body ends, found as its bytes go by (RFC 9112, section 7.1); the bytes are not decoded."""

    def __init__(self):
        self.line = bytearray()
        self.data_left = 0  # bytes of chunk data (and its CRLF) still to come
        self.in_trailer = False
        self.trailer_bytes = 0
        self.done = False

    def scan(self, data: memoryview) -> int:
        """How many bytes of ``data`` belong to the body (all of them unless it ends within)."""
        at = 0
        while at < len(data) and not self.done:
            if self.data_left:
                step = min(self.data_left, len(data) - at)
                self.data_left -= step
                at += step
                continue
            newline = bytes(data[at:at + MAX_CHUNK_LINE + 1 - len(self.line)]).find(b"\n")
            if newline < 0:
                self.line += data[at:at + MAX_CHUNK_LINE + 1 - len(self.line)]
                if len(self.line) > MAX_CHUNK_LINE:
                    raise Refused(400)
                return len(data)
            self.line += data[at:at + newline + 1]
            at += newline + 1
            self._line_done(bytes(self.line).rstrip(b"\r\n"))
            self.line.clear()
        return at

    def _line_done(self, line: bytes) -> None:
        if self.in_trailer:
            self.trailer_bytes += len(line)
            if self.trailer_bytes > MAX_HEAD_BYTES:
                raise Refused(431)
            self.done = not line
            return
        size = line.split(b";", 1)[0].strip()
        if not size or len(size) > 16 or size.strip(b"0123456789abcdefABCDEF"):
            raise Refused(400)
        self.data_left = int(size, 16)
        if self.data_left:
            self.data_left += 2  # the CRLF after the data
        else:
            self.in_trailer = True


class RequestAssembler:
    """The bytes of one request, fed as they come; ``complete`` once its end is known. ``max_body`` bounds a body (one
    announced or grown larger is refused, 413, before it is stored), a callback's ``CALLBACK_BODY_BYTES`` too;
    ``spool``: the process's ``SpoolSpace``."""

    def __init__(self, max_body: int, spool: SpoolSpace | None = None):
        self.max_body = max_body
        self.spool = spool
        self.callback = False  # a callback from BFL (never refused by the spool space)
        self._held = 0  # bytes taken from the spool space
        self.head = bytearray()
        self.head_complete = False
        self.complete = False
        # The head alone goes on; the connection must close after the answer (framing not ours to tell).
        self.head_only = False
        self.expects_continue = False
        self.body_length: int | None = None  # None: chunked (or no body known yet)
        self.body_received = 0
        self.leftover = b""  # bytes after the request's end: the start of the next one
        self._memory: bytearray | None = None
        self._spool: IO[bytes] | None = None
        self._chunks: _Chunks | None = None

    @property
    def started(self) -> bool:
        return bool(self.head)

    def feed(self, data: bytes) -> None:
        """Take bytes from the connection. Raises ``Refused`` for a request that cannot be taken."""
        if self.complete:
            self.leftover += data
            return
        if not self.head_complete:
            data = self._feed_head(data)
            if not self.head_complete or self.complete:
                return
        self._feed_body(data)

    def _feed_head(self, data: bytes) -> bytes:
        searched_from = max(0, len(self.head) - 3)
        self.head += data
        end = _HEAD_END.search(self.head, searched_from)
        if end is None or end.end() > MAX_HEAD_BYTES:
            if len(self.head) > MAX_HEAD_BYTES:
                # Over the limit however it came (in pieces, or whole in one read): the request line alone, or more.
                line_end = self.head.find(b"\n", 0, MAX_HEAD_BYTES + 1)
                raise Refused(431 if line_end >= 0 else 414)
            return b""
        rest = bytes(self.head[end.end():])
        del self.head[end.end():]
        self.head_complete = True
        self.callback = is_callback(*self.request_line())
        if self.callback:
            self.max_body = min(self.max_body, CALLBACK_BODY_BYTES)
        self._read_framing()
        if self.body_length == 0 and self._chunks is None:
            self.complete = True
            self.leftover = rest
            return b""
        return rest

    def _read_framing(self) -> None:
        lengths, codings = set(), []
        for name, value in _FRAMING.findall(self.head):
            name = name.lower()
            if name == b"content-length":
                lengths.add(value.strip())
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",")]
            elif value.strip().lower() == b"100-continue":
                self.expects_continue = True
        if codings:
            if codings[-1] != b"chunked" or lengths:
                self._head_only()
            else:
                self._chunks = _Chunks()
                self._memory = bytearray()
            return
        if not lengths:
            self.body_length = 0
            return
        (length,) = lengths if len(lengths) == 1 else (b"",)
        if not length.isdigit() or not length.isascii() or len(length) > 18:
            self._head_only()
            return
        self.body_length = int(length)
        if self.body_length > self.max_body:
            raise Refused(413)
        if self.spool is not None and not self.spool.has_room(self.body_length, self.callback):
            raise Refused(503)  # at once: better than after the client sent what we would not keep
        self._memory = bytearray()

    def _head_only(self) -> None:
        self.head_only = True
        self.body_length = 0
        self.expects_continue = False

    def _feed_body(self, data: bytes) -> None:
        if not data:
            return
        if self._chunks is not None:
            taken = self._chunks.scan(memoryview(data))
            done = self._chunks.done
        else:
            assert self.body_length is not None  # a body not chunked came with its length
            taken = min(len(data), self.body_length - self.body_received)
            done = self.body_received + taken == self.body_length
        self._store(data[:taken] if taken < len(data) else data)
        if done:
            self.complete = True
            self.leftover = data[taken:]

    def _store(self, data: bytes) -> None:
        self.body_received += len(data)
        if self.body_received > self.max_body:
            raise Refused(413)
        if self.spool is not None:
            if not self.spool.acquire(len(data), self.callback):
                raise Refused(503)
            self._held += len(data)
        if self._spool is not None:
            self._spool.write(data)
            return
        assert self._memory is not None  # a body is in memory until it is spooled
        self._memory += data
        if len(self._memory) > MEMORY_BODY_BYTES:
            self._spool = tempfile.TemporaryFile()
            self._spool.write(self._memory)
            self._memory = None

    def request_line(self) -> tuple[str, str]:
        """The head's method and request-target (empty strings if it has no such line)."""
        parts = bytes(self.head[:self.head.find(b"\n")]).split(b" ")
        if len(parts) != 3:
            return "", ""
        return parts[0].decode("latin-1"), parts[1].decode("latin-1")

    def header(self, name: str) -> str | None:
        """The value of the head's first header ``name`` (case-insensitive), stripped; None if it has none. An
        X-End-User header sent more than once: all its values, joined as the app is handed them (``join_repeated``)."""
        pattern = rb"\n" + re.escape(name.encode("latin-1")) + rb"[ \t]*:[ \t]*([^\r\n]*)"
        found = [value.decode("latin-1").strip() for value in re.findall(pattern, bytes(self.head), re.IGNORECASE)]
        if not found:
            return None
        return REPEATED.join(found) if name.lower() == END_USER_HEADER.lower() else found[0]

    def head_alone(self) -> None:
        """Hand on the head without the body (the app refuses the request whatever its body says)."""
        self.discard()
        self._head_only()
        self.complete = True
        self.leftover = b""

    @property
    def waits_for_body(self) -> bool:
        """The head is in and the body is still coming: a client that sent ``Expect: 100-continue`` waits for us."""
        return self.head_complete and not self.complete

    def pieces(self, continue_sent: bool = False) -> Iterator[bytes]:
        """The whole request, head first (without its ``Expect: 100-continue`` once we answered it), in pieces; what
        was stored is let go once read to the end, or by ``discard`` once the request is answered (a reader that stops
        at the body's length never asks for the end: the spool stays ours to close, not the generator's)."""
        head = bytes(self.head)
        yield _EXPECT_CONTINUE.sub(b"", head) if continue_sent else head
        if self._spool is not None:
            self._spool.seek(0)
            while piece := self._spool.read(CHUNK):
                yield piece
        elif self._memory:
            yield bytes(self._memory)
        self.discard()

    def discard(self) -> None:
        """Let go of whatever was stored (the request was answered, or the connection ended before it was whole)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._memory = None
        if self._held and self.spool is not None:
            self.spool.release(self._held)
            self._held = 0
