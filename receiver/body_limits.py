"""Limits on request bodies still arriving, which no caller can bend.

The web worker (``receiver/buffering_worker.py``) receives every request whole before a thread serves it, so
until a body is in, the process holds its bytes: in memory, or in a temporary file past ``MEMORY_BODY_BYTES``
(``receiver/request_assembly.py``). Anyone can send a body (the sign-in form, a key-shaped token on ``/v1``,
the static callback URL), so two rules bound what that costs, with or without credentials:

- ``SpoolSpace``: the bytes one web process holds for bodies still arriving, in total (``MAX_SPOOL_BYTES``).
  A body that would pass it is refused at once (503 with Retry-After). Callbacks never are: a room is kept
  for them that other bodies cannot take, and each holds at most ``CALLBACK_BODY_BYTES``.
- ``BodyPace``: a body must keep arriving at ``MIN_BODY_RATE`` at least, averaged over any
  ``RATE_WINDOW_SECONDS`` (a sliding window: bytes sent fast at first buy no time later). Below it, the
  connection is answered 408 and its bytes are freed, however much it sent before.

Both are plain objects with no sockets and no clock of their own: the worker passes the time.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote

from fluxhook.bfl.reports import MAX_CALLBACK_BYTES
from fluxhook.core.config import field_default

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
    """The bytes one web process holds for request bodies still arriving, against ``limit`` (``MAX_SPOOL_BYTES``).

    Shared by the worker's threads (each feeds the requests of its connection), so guarded by a lock.
    """

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
            if not callback and self.held + size > self.largest_body:
                return False
            self.held += size
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self.held -= size


class BodyPace:
    """How much of one body arrived over the last ``RATE_WINDOW_SECONDS``; it must be ``min_rate`` a second at least.

    ``started``: when the head was in; the body is first judged one window later.
    """

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
