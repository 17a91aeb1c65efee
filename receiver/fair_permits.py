"""A web process's work permits, handed between callers in turns (docs/operating.md "No key can hold the web",
docs/fair-share.md's rule).

Each request waits in its caller's line (its *lane*: an app key, the admin tokens, BFL's callbacks...). A permit that
frees goes to the lane whose turn it is, and the turn moves on after ``weight`` permits, so a caller with a hundred
requests waiting delays another caller's request by at most one turn, whatever arrives first. Within a lane requests
keep the order they came in. A lane holds at most ``per_lane`` permits at once (half of them by default): with its
requests long at work (a search, a batch's results being made), the rest still serve the others at once.

First come within a lane on purpose: ``threading.Semaphore`` lets a newcomer take a permit before a thread already
woken for it, which leaves some requests waiting far longer than others.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque


class FairPermits:
    """At most ``count`` requests at work at once, handed to the waiting lanes in weighted turns."""

    def __init__(self, count: int, per_lane: int | None = None):
        self.count = count
        self.per_lane = per_lane if per_lane is not None else max(1, count // 2)
        self._lock = threading.Lock()
        self._free = count
        self._held: dict[str, int] = {}
        # Lanes with requests waiting, in turn order: lane -> (its waiters, permits left in its turn, its weight).
        self._turns: OrderedDict[str, tuple[deque[threading.Event], list[int], int]] = OrderedDict()

    def acquire(self, lane: str, weight: int = 1) -> None:
        """Wait for a permit, in ``lane``'s line, behind its own earlier requests and the lanes whose turn is first."""
        with self._lock:
            if self._free and not self._turns and self._held.get(lane, 0) < self.per_lane:
                self._take(lane)
                return
            turn = threading.Event()
            waiting = self._turns.get(lane)
            if waiting is None:
                self._turns[lane] = (deque([turn]), [max(1, weight)], max(1, weight))
            else:
                waiting[0].append(turn)
            self._hand_on()
        turn.wait()

    def release(self, lane: str) -> None:
        """Give ``lane``'s permit back: to the next lane in turn that may take one, or to the free ones."""
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
            entry = self._turns.get(lane)
            return len(entry[0]) if entry else 0

    def _take(self, lane: str) -> None:
        self._free -= 1
        self._held[lane] = self._held.get(lane, 0) + 1

    def _hand_on(self) -> None:
        """Give free permits to waiting lanes in turn; a lane at its ``per_lane`` waits for one of its own."""
        passed = 0  # lanes in a row whose turn passed: when every one did, nobody may take a permit now
        while self._free and self._turns and passed < len(self._turns):
            lane, (waiters, left, weight) = next(iter(self._turns.items()))
            if self._held.get(lane, 0) >= self.per_lane:
                self._turns.move_to_end(lane)  # its turn passes: it has as many at work as it may
                left[0] = weight
                passed += 1
                continue
            passed = 0
            self._take(lane)
            waiters.popleft().set()
            left[0] -= 1
            if not waiters:
                del self._turns[lane]
            elif left[0] <= 0:
                self._turns.move_to_end(lane)
                left[0] = weight
