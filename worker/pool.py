"""A dispatcher thread and its hands: the dispatcher takes work only while a hand is free to do it at once, so nothing
it took waits in the process for a free thread (the senders' submissions, the checkers' checks)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .loops import Loop

# How long the dispatcher waits at most for a free hand before it looks again whether to stop; and how long a stop
# waits for its step under way (a dispatch), before it waits for the work in hand.
WAKE_TIMEOUT = 1.0


class Pool(Loop):
    """The dispatcher (this thread, ``name``; ``step`` is the subclass's) and its hands, ``size`` threads of ``hands``,
    until ``stop()``."""

    def __init__(self, name: str, hands: ThreadPoolExecutor, size: int):
        super().__init__(name)
        self.size = size
        self._hands = hands
        self._room = threading.Condition()
        self._busy = 0
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

    def free_hands(self) -> int:
        """How many hands are free, waiting up to ``WAKE_TIMEOUT`` for one; 0 once stopping."""
        with self._room:
            self._room.wait_for(lambda: self._busy < self.size or self._stopping, WAKE_TIMEOUT)
            return 0 if self._stopping else self.size - self._busy

    def hand(self, work: Callable[..., None], *args) -> None:
        """Give ``work(*args)`` to a free hand (``free_hands`` said one is)."""
        with self._room:
            self._busy += 1
        self._hands.submit(self._run, work, args)

    def _run(self, work: Callable[..., None], args: tuple) -> None:
        try:
            work(*args)
        finally:
            with self._room:
                self._busy -= 1
                self._room.notify_all()
