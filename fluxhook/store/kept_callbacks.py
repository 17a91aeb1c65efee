"""What Redis keeps of callbacks that came before their job knew its task (see
``fluxhook.lifecycle.steps.kept_callbacks``): for the static URL, only that a task was reported; for a job's own URL,
the body, until BFL's answer to its submission names the task."""

from __future__ import annotations

import hashlib
import time
from typing import Callable, cast

from redis import Redis

from fluxhook.core.holds import REPORTS_HOUR, REPORTS_KEPT
from fluxhook.core.job import ACTIVE, EARLY_KEPT
from fluxhook.core.signing import Sealer
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

# The static URL's reports of tasks no job tracks yet: a bitmap of MARK_BITS per account and UTC hour, a bit set
# per reported task id's hash, read for the hour a track comes in and the one before (so a report is kept one to
# two hours). Its size is fixed, whoever reports and however many: a flood of made-up task ids sets bits and
# refuses nothing, and a bit once set is never cleared by anyone, so no tenant can fill or empty another's room.
# A bit another task's hash set too (0.1 % of tasks with 4,000 reported in an hour; every task only past millions)
# costs one poll of BFL at that track, which the track's key pays for in its requests a minute.
MARK_BITS = 1 << 22
MARK_BYTES = MARK_BITS // 8


def _bit(bfl_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(bfl_id.encode(), digest_size=8).digest(), "big") % MARK_BITS


class KeptCallbacks:
    """Reported tasks by account (static URL) and kept bodies by job (per-job URL), on one Redis connection."""

    def __init__(self, connection: Redis, sealer: Sealer, keys: Keys = KEYS,
                 clock: Callable[[], float] = time.time):
        self.connection = connection
        self.keys = keys
        # A Ready body carries BFL's delivery URL: kept sealed.
        self.sealer = sealer
        # The hour a report is kept under (tests run it by hand).
        self.clock = clock
        self._keep = LuaScript(connection, "early_keep")

    def mark_reported(self, account: str, bfl_id: str) -> None:
        """Remember for an hour or two that ``account``'s static secret reported the task ``bfl_id``."""
        key = self.keys.kept_marks(account, int(self.clock()) // REPORTS_HOUR)
        pipe = self.connection.pipeline(transaction=False)
        pipe.setbit(key, _bit(bfl_id), 1)
        pipe.expire(key, REPORTS_KEPT)
        pipe.execute()

    def was_reported(self, account: str, bfl_id: str) -> bool:
        """Whether ``account``'s static secret reported the task within the last hour (or two), as far as its bit says."""
        hour, bit = int(self.clock()) // REPORTS_HOUR, _bit(bfl_id)
        pipe = self.connection.pipeline(transaction=False)
        for h in (hour, hour - 1):
            pipe.getbit(self.keys.kept_marks(account, h), bit)
        return any(pipe.execute())

    def keep_for_job(self, job_id: str, body: bytes, *, putting_back: bool = False) -> bool:
        """Keep a body that came before BFL's answer to the job's submission (``putting_back``: unless another was
        kept meanwhile), its record's flag (``EARLY_KEPT``) saying so in the same step; False, keeping nothing, for
        a job gone or ended. One per job, proven by the job's own secret: bounded by the jobs."""
        return bool(self._keep([self.keys.job(job_id), self.keys.kept_for_job(job_id)],
                               [EARLY_KEPT, self.sealer.seal(body), REPORTS_HOUR, int(putting_back), *ACTIVE]))

    def flag(self, job_id: str) -> bool:
        """Say on the job's record that a body is kept for it (``EARLY_KEPT``): what a body kept by an older
        release lacks (``store.migrations``); False for a job gone or ended."""
        return bool(self._keep([self.keys.job(job_id), self.keys.kept_for_job(job_id)],
                               [EARLY_KEPT, "", REPORTS_HOUR, 0, *ACTIVE]))

    def take_for_job(self, job_id: str) -> bytes | None:
        """Take what was kept for the job on its own URL (before it knew its task)."""
        kept = cast(bytes | None, self.connection.getdel(self.keys.kept_for_job(job_id)))  # never decoded: bytes
        return None if kept is None else self.opened(kept)

    def opened(self, kept: bytes) -> bytes | None:
        """The body of a value taken from ``Keys.kept_for_job`` (by ``take_for_job``, or with the job's submission).
        One no key opens (SECRET_KEY changed without keeping the old one) is worth nothing (None): BFL's retry or a
        poll brings the report again."""
        return self.sealer.open(kept)
