"""Refusals a web process repeats without working them out again (docs/operating.md: a request over its key's limits is refused
before it takes any capacity or more than one Redis step).

When a key's read is refused for its rate (``429 rate_limited`` with ``Retry-After``), the answer is kept for that
key's lane and the refusal's scope (``bulkheads.refusal_scope``: every path under /v1, since every one of them counts
against the same limit) until the time it names: the key's next GETs there, however many it sends without waiting,
are answered from here before they take a work permit, a thread's Flask or a Redis step. Only reads (GET):
a write's refusal may depend on its body and headers (an idempotent replay is answered, not refused).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

from fluxhook.core.recent import Recent

# What is kept: (lane, path) -> (until, status line, headers, body); the least recently refused dropped first.
KEPT = 10_000
REMEMBER = "fluxhook.refusal_until"  # set by the error handler on the environ of a refusal worth repeating


class Refusals:
    """This process's refusals still in force, by (lane, path)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._kept: Recent[tuple[str, str], tuple[float, str, list, bytes]] = Recent(KEPT)
        self._lock = threading.Lock()

    def keep(self, lane: str, path: str, until: float, status: str, headers: list, body: bytes) -> None:
        with self._lock:
            self._kept[(lane, path)] = (until, status, headers, body)

    def answer(self, lane: str, path: str) -> tuple[str, list, bytes] | None:
        """The refusal still in force for ``lane``'s GET of ``path`` (its ``Retry-After`` counted down), or None."""
        with self._lock:
            kept = self._kept.get((lane, path))
            if kept is None:
                return None
            until, status, headers, body = kept
            left = until - self.clock()
            if left <= 0:
                del self._kept[(lane, path)]
                return None
        retry = str(max(1, math.ceil(left)))
        return status, [(k, retry if k.lower() == "retry-after" else v) for k, v in headers], body
