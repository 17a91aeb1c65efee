"""Announcements of jobs that change (Redis pub/sub): for requests that wait on a job and the streams following jobs.

The scripts that write a job announce it on ``Keys.job_changes`` (its id) in the same step: ``job_record.lua`` when
it is made, ``job_transition.lua`` when its status moves or one of ``records.ANNOUNCED_FIELDS`` really changes (a write of
the value it already holds announces nothing). One subscription per process (``JobChanges.listen``) hands every
announcement to each of the process's listeners.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError

from fluxhook.store.keys import KEYS, Keys

log = logging.getLogger("fluxhook.waiting")

class Listener:
    """What one process does with announcements: ``on_change(job_id)`` for each, ``on_connect()`` after every
    (re)subscription (announcements made while unsubscribed are lost: look at the jobs again)."""

    def __init__(self, on_change: Callable[[str], None], on_connect: Callable[[], None]):
        self.on_change = on_change
        self.on_connect = on_connect


class JobChanges:
    """One subscription per process to the channel the job scripts publish on, shared by its listeners."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._subscribed = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, listener: Listener) -> None:
        """Hand this listener every announcement from now on (the subscription starts with the first listener)."""
        with self._lock:
            self._listeners.append(listener)
            subscribed = self._subscribed
            if self._thread is None:
                self._thread = threading.Thread(target=self.listen, name="job-changes", daemon=True)
                self._thread.start()
        if subscribed:
            listener.on_connect()  # its first look at its jobs is now

    def close(self) -> None:
        """Stop listening (tests; a process's end stops the daemon thread anyway)."""
        self._stop.set()

    def _changed(self, job_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener.on_change(job_id)
            except Exception:  # one listener's fault must not silence the others
                log.exception("job changes: a listener failed")

    def _reconnected(self) -> None:
        with self._lock:
            self._subscribed = True
            listeners = list(self._listeners)
        for listener in listeners:
            listener.on_connect()

    def listen(self) -> None:
        """Hand the listeners every job announced, and each (re)subscription (``Listener``), until ``close``."""
        while not self._stop.is_set():
            pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.job_changes)
                self._reconnected()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        self._changed(data.decode() if isinstance(data, bytes) else data)
            except RedisError as exc:
                log.warning("job changes: subscription lost, resubscribing", extra={"error": type(exc).__name__})
                self._stop.wait(1.0)  # Redis is down: nothing to wait on but the clock
            finally:
                pubsub.close()
