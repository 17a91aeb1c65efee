"""Who watches which job: a mark on its record until when it is watched (``WATCHED_UNTIL``), for the poll schedule.
A look extends it; it lapses by the clock."""

from __future__ import annotations

import time

from redis import Redis

from fluxhook.core import job as st
from fluxhook.core.job import WATCHED_UNTIL
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript


class Watching:
    """The watch marks on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._watch = LuaScript(connection, "watch")

    def watch(self, job_id: str, seconds: float, poll_by: float) -> bool:
        """Mark the job watched for ``seconds`` (a longer mark stays), if it has not ended; a job newly watched with
        a task at BFL is polled by ``poll_by`` at the latest. One command; whether the job was not watched before."""
        return bool(self._watch([self.keys.job(job_id), self.keys.due],
                                [f"{seconds:.3f}", f"{time.time():.3f}", job_id, f"{poll_by:.3f}", WATCHED_UNTIL,
                                 *st.ACTIVE]))

    def watched_for(self, job_id: str) -> float:
        """How many seconds more the job is watched, if no one looks again (0: it is not watched)."""
        until = self.connection.hget(self.keys.job(job_id), WATCHED_UNTIL)
        return max(0.0, float(until) - time.time()) if until else 0.0
