"""Who watches which job: a mark per job that lapses by itself (``Keys.watched``), for the poll schedule."""

from __future__ import annotations

from redis import Redis

from fluxhook.core import transitions as st
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
        return bool(self._watch([self.keys.watched(job_id), self.keys.job(job_id), self.keys.due],
                                [int(seconds * 1000), job_id, f"{poll_by:.3f}", *st.ACTIVE]))

    def watched(self, job_id: str) -> bool:
        """Whether someone watches the job now."""
        return bool(self.connection.exists(self.keys.watched(job_id)))
