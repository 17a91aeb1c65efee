"""Job timelines in Redis: a capped list of JSON entries per job, newest first (see ``fluxhook.lifecycle.steps.timeline``)."""

from __future__ import annotations

from typing import cast

from redis import Redis

from fluxhook.store.keys import KEYS, Keys

# Enough for the longest fallback story (an hour of polls: each kept only when its answer is news) plus its callbacks.
TIMELINE_CAP = 100


class TimelineStore:
    """Timelines on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys

    def newest(self, job_id: str) -> list[bytes]:
        """The job's raw entries, newest first."""
        return cast(list[bytes], self.connection.lrange(self.keys.timeline(job_id), 0, TIMELINE_CAP - 1))  # never decoded: bytes

    def forget(self, job_id: str) -> None:
        self.connection.delete(self.keys.timeline(job_id))
