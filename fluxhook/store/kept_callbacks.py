"""Callback bodies kept in Redis for an hour until their job knows its task (see ``fluxhook.lifecycle.steps.kept_callbacks``)."""

from __future__ import annotations

import time

from redis import Redis

from fluxhook.core.sealing import Sealer
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

KEEP_SECONDS = 3600
# What one account's static secret may make Redis keep at once for tasks no job tracks yet (``lua/kept_keep.lua``).
# An app tracks its task as soon as BFL answers it, so a callback waits here seconds at most, and few wait at once;
# BFL's callbacks are a few KiB (a long prompt, echoed, more). A secret's holder who makes up task ids fills
# this and no more: about 16 of the largest bodies (1 MiB, sealed), or a thousand small ones.
KEPT_PER_ACCOUNT = 1000
KEPT_BYTES_PER_ACCOUNT = 16 * 1024 * 1024


class KeptCallbacks:
    """Kept bodies on one Redis connection, by account and BFL task (static URL) or by job (per-job URL)."""

    def __init__(self, connection: Redis, sealer: Sealer, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        # A Ready body carries BFL's delivery URL: kept sealed (its bounds count the sealed bytes).
        self.sealer = sealer
        self._keep = LuaScript(connection, "kept_keep")
        self._take = LuaScript(connection, "kept_take")

    def keep_for_task(self, account: str, bfl_id: str, body: bytes, *, putting_back: bool = False) -> float:
        """Keep a body proven by ``account``'s static secret for a task no job tracks yet: 0.0, or the seconds until
        the account's bounds leave room (nothing kept). ``putting_back``: a body taken for an attempt that failed,
        kept whatever the bounds, unless another was kept for the task meanwhile."""
        wait = self._keep([self.keys.kept_for_task(account, bfl_id), *self.keys.kept_of_account(account)],
                          [int(time.time() * 1000), bfl_id, KEEP_SECONDS * 1000, KEPT_PER_ACCOUNT,
                           KEPT_BYTES_PER_ACCOUNT, self.sealer.seal(body), "1" if putting_back else "0"])
        return int(wait) / 1000

    def take_for_task(self, account: str, bfl_id: str) -> bytes | None:
        """Take what ``account``'s static secret kept for the task (whoever takes it first has it)."""
        return self._opened(self._take([self.keys.kept_for_task(account, bfl_id), *self.keys.kept_of_account(account)],
                                       [bfl_id]))

    def keep_for_job(self, job_id: str, body: bytes, *, putting_back: bool = False) -> None:
        """Keep a body that came before BFL's answer to the job's submission (``putting_back``: unless another was
        kept meanwhile). One per job, proven by the job's own secret: bounded by the jobs."""
        self.connection.set(self.keys.kept_for_job(job_id), self.sealer.seal(body), ex=KEEP_SECONDS, nx=putting_back)

    def take_for_job(self, job_id: str) -> bytes | None:
        """Take what was kept for the job on its own URL (before it knew its task)."""
        return self._opened(self.connection.getdel(self.keys.kept_for_job(job_id)))

    def _opened(self, kept: bytes | None) -> bytes | None:
        # One no key opens (SECRET_KEY changed without keeping the old one) is worth nothing: BFL's retry or a
        # poll brings the report again.
        return None if kept is None else self.sealer.open(kept)
