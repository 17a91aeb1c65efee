"""Callback bodies kept in Redis for an hour until their job knows its task (see ``fluxhook.lifecycle.kept_callbacks``)."""

from __future__ import annotations

from redis import Redis

from fluxhook.store.keys import KEYS, Keys

KEEP_SECONDS = 3600


class KeptCallbacks:
    """Kept bodies on one Redis connection, by BFL task (static URL) or by job (per-job URL)."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys

    def keep_for_task(self, bfl_id: str, body: bytes) -> None:
        """Keep a verified body for a task no job tracks yet."""
        self.connection.set(self.keys.kept_for_task(bfl_id), body, ex=KEEP_SECONDS)

    def keep_for_job(self, job_id: str, body: bytes) -> None:
        """Keep a body that came before BFL's answer to the job's submission."""
        self.connection.set(self.keys.kept_for_job(job_id), body, ex=KEEP_SECONDS)

    def take_for_job(self, job_id: str) -> list[tuple[str, bytes]]:
        """Take what was kept for the job on its own URL (before it knew its task); (key, body) pairs."""
        body = self.connection.getdel(self.keys.kept_for_job(job_id))
        return [] if body is None else [(self.keys.kept_for_job(job_id), body)]

    def take(self, job_id: str, bfl_id: str) -> list[tuple[str, bytes]]:
        """Take what was kept for the job or its task (whoever takes a body first has it); (key, body) pairs."""
        taken = []
        for key in (self.keys.kept_for_job(job_id), self.keys.kept_for_task(bfl_id)):
            body = self.connection.getdel(key)
            if body is not None:
                taken.append((key, body))
        return taken

    def put_back(self, key: str, body: bytes) -> None:
        """Return a taken body for the next attempt (unless another was kept meanwhile)."""
        self.connection.set(key, body, ex=KEEP_SECONDS, nx=True)
