"""What this worker process did that its resting threads follow up: a job sent, a task run, work moved into RQ.

The sweep and the balance reader look at Redis on their own pace only while there is work about (SPEC §17): at rest
they wait for this process to do some (``noted``), or for a long bound that covers work another process or the web
left them. Each listener has its own event, so one waking does not consume another's.
"""

from __future__ import annotations

import threading


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
