"""Announcements of jobs turning terminal (Redis pub/sub), for requests that wait on a job."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from redis import Redis
from redis.exceptions import RedisError

from fluxhook.store.keys import KEYS, Keys

log = logging.getLogger("fluxhook.waiting")


class JobChanges:
    """One subscription per process to the channel the transition script publishes on."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys

    def listen(self, on_change: Callable[[str], None], on_connect: Callable[[], None], stop: threading.Event) -> None:
        """Call ``on_change(job_id)`` for every job that turns terminal, until ``stop`` is set.

        After every (re)subscription ``on_connect()`` runs: announcements made while unsubscribed are
        lost, so waiters should look at their jobs again.
        """
        while not stop.is_set():
            pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.job_changes)
                on_connect()
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        on_change(data.decode() if isinstance(data, bytes) else data)
            except RedisError as exc:
                log.warning("job changes: subscription lost, resubscribing", extra={"error": type(exc).__name__})
                stop.wait(1.0)  # Redis is down: nothing to wait on but the clock
            finally:
                pubsub.close()
