"""What this worker process did that its resting threads follow up: a job sent, a task run, work moved into RQ.

The balance reader looks at Redis on its own pace only while there is work about: at rest it waits for this
process to do some (``noted``), or for a long bound that covers work another process or the web left it. (The sweeper
at rest waits on a wake-up list in Redis instead, ``worker/sweeping.py``: work the web leaves it is its to follow up
at once.) Each listener has its own event, so one waking does not consume another's.
"""

from __future__ import annotations

import threading

from .loops import Loop


class Activity:
    """The process's note that it did work, for each thread that listens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def listener(self) -> threading.Event:
        """An event of the caller's own, set each time the process does work (the caller clears it)."""
        event = threading.Event()
        with self._lock:
            self._listeners.append(event)
        return event

    def noted(self) -> None:
        """The process did work: wake every listener."""
        with self._lock:
            listeners = list(self._listeners)
        for event in listeners:
            event.set()


ACTIVITY = Activity()


class RestingLoop(Loop):
    """A ``Loop`` whose step, at rest, waits for its process's work (``rest``); a stop ends that wait at once."""

    def __init__(self, name: str):
        super().__init__(name)
        self._worked = ACTIVITY.listener()

    def request_stop(self) -> None:
        super().request_stop()
        self._worked.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._worked.set()
        super().stop(timeout)

    def worked(self) -> bool:
        """Whether the process did work since the last call (and forget it)."""
        done = self._worked.is_set()
        self._worked.clear()
        return done

    def rest(self, seconds: float) -> None:
        """Wait ``seconds``, or until the process does work or a stop comes."""
        self._worked.wait(seconds)
