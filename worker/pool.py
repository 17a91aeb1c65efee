"""A dispatcher thread and its hands: the dispatcher takes work only while a hand is free to do it at once, so nothing
it took waits in the process for a free thread (the senders' submissions, the checkers' checks, the notifier's attempts).

Hands are shared out in parts (the BFL accounts, of the senders and of the checkers): a part holds at most
``part_size`` of them, so work of one part that hangs holds that part's hands and no other's. While its dispatcher waits
in Redis for work of the parts with room, a hand that a full part frees ends that wait (``nudge``): its part's work may
be waiting already."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Hashable, Iterable, Iterator, TypeVar

from .loops import Loop

Part = TypeVar("Part", bound=Hashable)

# How long the dispatcher waits at most for a free hand before it looks again whether to stop; and how long a stop
# waits for its step under way (a dispatch), before it waits for the work in hand.
WAKE_TIMEOUT = 1.0


class Pool(Loop):
    """The dispatcher (this thread, ``name``; ``step`` is the subclass's) and its hands, ``size`` threads of ``hands``,
    until ``stop()``."""

    def __init__(self, name: str, hands: ThreadPoolExecutor, size: int, part_size: int | None = None):
        super().__init__(name)
        self.size = size
        self.part_size = part_size or size
        self._hands = hands
        self._room = threading.Condition()
        self._busy = 0
        self._busy_in: dict[Hashable, int] = {}
        # How many hands full parts have freed so far, and whether the dispatcher waits in Redis (``resting``).
        self._freed = 0
        self._resting = False
        self._stopping = False

    def stop_taking(self) -> None:
        """Take no more work (safe in a signal handler: a flag, no lock); the dispatcher sees it within
        ``WAKE_TIMEOUT``."""
        self._stopping = True

    def stop(self, timeout: float = 5.0) -> None:
        """Take no more work; let the work in hand finish, for up to ``timeout`` seconds."""
        self._stopping = True
        self._stop_event.set()
        with self._room:
            self._room.notify_all()
        super().stop(WAKE_TIMEOUT + 5.0)  # not for a wait for work: it holds nothing
        self._hands.shutdown(wait=False)
        with self._room:
            self._room.wait_for(lambda: self._busy == 0, timeout)

    def busy(self) -> int:
        """How many hands are at work now."""
        with self._room:
            return self._busy

    def rooms(self, parts: Iterable[Part]) -> dict[Part, int]:
        """How many hands each of ``parts`` may take now, waiting up to ``WAKE_TIMEOUT`` for one to have room; none
        once stopping."""
        parts = list(parts)

        def room(part: Part) -> int:
            return max(0, min(self.size - self._busy, self.part_size - self._busy_in.get(part, 0)))

        with self._room:
            self._room.wait_for(lambda: self._stopping or any(room(part) for part in parts), WAKE_TIMEOUT)
            return {part: 0 if self._stopping else room(part) for part in parts}

    @property
    def freed(self) -> int:
        """How many hands full parts have freed so far: what ``resting`` compares against."""
        with self._room:
            return self._freed

    @contextmanager
    def resting(self, freed: int) -> Iterator[bool]:
        """Around the dispatcher's wait in Redis for work, after a take made when ``freed`` read so: True to wait, False
        when a full part freed a hand since (its waiting work may go now). A hand a full part frees during the wait
        ends it (``nudge``)."""
        with self._room:
            self._resting = self._freed == freed
            rest = self._resting
        try:
            with self.waiting():
                yield rest
        finally:
            with self._room:
                self._resting = False

    def nudge(self) -> None:
        """End the dispatcher's wait in Redis (``resting``): a full part freed a hand."""

    def hand(self, work: Callable[..., None], *args, part: Hashable = None) -> None:
        """Give ``work(*args)`` to a free hand of ``part`` (``rooms`` said one is)."""
        with self._room:
            self._busy += 1
            self._busy_in[part] = self._busy_in.get(part, 0) + 1
        self._hands.submit(self._run, work, part, args)

    def _run(self, work: Callable[..., None], part: Hashable, args: tuple) -> None:
        try:
            work(*args)
        finally:
            with self._room:
                self._busy -= 1
                self._busy_in[part] -= 1
                full = self._busy_in[part] + 1 == self.part_size
                self._freed += full
                nudge = full and self._resting
                self._room.notify_all()
            if nudge:
                self.nudge()
