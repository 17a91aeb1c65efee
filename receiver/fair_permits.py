"""A web process's work permits, handed between callers in turns (docs/operating.md "No key can hold the web") by the
rule every line of fluxhook's work is served by (``fluxhook.core.fair_turns``, docs/fair-share.md).

Each request waits in its caller's line (its *lane*: an app key, the admin tokens, BFL's callbacks...). A permit that
frees goes to the waiting lane whose turn starts first, each permit a turn costing the lane 1 / its ``weight``, so a
caller with a hundred requests waiting delays another caller's request by at most one turn, whatever arrives first,
and a lane back from idle starts level with the others. Within a lane requests keep the order they came in. A lane
holds at most ``per_lane`` permits at once (half of them by default): with its requests long at work (a search, a
batch's results being made), the rest still serve the others at once.

A permit is handed to its waiter, never left free for a newcomer to take: ``threading.Semaphore`` lets a newcomer take
a permit before a thread already woken for it, which leaves some requests waiting far longer than others.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field

from fluxhook.core.fair_turns import FairTurns


@dataclass
class _Waiter:
    arrived: int  # the process's count of requests when it came: ties go to the earliest
    weight: int
    turn: threading.Event = field(default_factory=threading.Event)


class FairPermits:
    """At most ``count`` requests at work at once, handed to the waiting lanes in weighted turns."""

    def __init__(self, count: int, per_lane: int | None = None):
        self.count = count
        self.per_lane = per_lane if per_lane is not None else max(1, count // 2)
        self._lock = threading.Lock()
        self._free = count
        self._held: dict[str, int] = {}
        self._lines: dict[str, deque[_Waiter]] = {}  # the lanes with requests waiting, each in the order they came
        self._turns: FairTurns[str] = FairTurns()
        self._arrivals = itertools.count()

    def acquire(self, lane: str, weight: int = 1) -> None:
        """Wait for a permit, in ``lane``'s line, behind its own earlier requests and the lanes whose turn is first."""
        with self._lock:
            waiter = _Waiter(next(self._arrivals), max(1, weight))
            self._lines.setdefault(lane, deque()).append(waiter)
            self._hand_on()
        waiter.turn.wait()

    def release(self, lane: str) -> None:
        """Give ``lane``'s permit back: to the lane whose turn starts first among those that may take one, or to the
        free ones."""
        with self._lock:
            held = self._held[lane] - 1
            if held:
                self._held[lane] = held
            else:
                del self._held[lane]
            self._free += 1
            self._hand_on()

    def held(self, lane: str) -> int:
        """Permits ``lane`` holds now."""
        with self._lock:
            return self._held.get(lane, 0)

    def waiting(self, lane: str) -> int:
        """Requests of ``lane`` waiting for a permit now."""
        with self._lock:
            return len(self._lines.get(lane, ()))

    def _hand_on(self) -> None:
        """Give free permits to waiting lanes in turn; a lane at its ``per_lane`` waits for one of its own."""
        while self._free:
            turn = self._turns.earliest((lane, line[0].arrived) for lane, line in self._lines.items()
                                        if self._held.get(lane, 0) < self.per_lane)
            if turn is None:
                return
            lane = turn[0]
            line = self._lines[lane]
            waiter = line.popleft()
            if not line:
                del self._lines[lane]
            self._turns.serve(lane, 1, waiter.weight)
            self._free -= 1
            self._held[lane] = self._held.get(lane, 0) + 1
            waiter.turn.set()
