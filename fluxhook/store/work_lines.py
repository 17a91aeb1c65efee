"""The workers' work lines: downloads, draft caches, thumbnails and notifications taken fairly across keys.

RQ takes tasks first in, first out, so one key's 150 results would hold another key's one behind them.
Instead, the RQ tasks of one kind are interchangeable *tokens*: queuing work adds the job to its
kind's line (``Keys.work_line``) in the same atomic step that queues one token (see
``fluxhook.store.effects.AddWork``), and which job a token works on is chosen when it runs
(``take``), by the slots' own rule (``lua/fair_turns.lua``): start-time fair queueing over owners,
each task a turn costing 1 / the owner's ``weight`` (``Keys.share_weights``). So one key's backlog
delays another key's result by at most one task per worker.

A token is bound to its job (``Keys.work_bound``) from ``take`` until it ends with no retry coming
(``done``): an RQ retry of the token, or its run again after its worker died, resumes the same job, so
nothing is lost or done twice. Tokens never number fewer than the jobs waiting; an extra one finds
the line empty and ends quietly.
"""

from __future__ import annotations

from redis import Redis

from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT, owner_of
from fluxhook.store.scripts import LuaScript

DOWNLOAD = "download"
DRAFT_CACHE = "draft_cache"
THUMBNAIL = "thumbnail"
NOTIFY = "notify"
KINDS = (DOWNLOAD, DRAFT_CACHE, THUMBNAIL, NOTIFY)


def member(owner: str, job_id: str) -> str:
    """A job's member in a work line: ``<owner>:<job id>``."""
    return f"{owner}:{job_id}"


def job_of(item: str) -> str:
    """The job id of a work line's member."""
    return item.split(":", 1)[1]


class WorkLines:
    """The work lines of every kind, on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._take = LuaScript(connection, "fair_turns", "work_take")
        self._done = LuaScript(connection, "work_done")

    def add(self, kind: str, key_id: str | None, job_id: str, pipeline) -> None:
        """Put the job of app key ``key_id`` in ``kind``'s line on ``pipeline`` (a MULTI, or a recording of
        one), unless it is there already; the caller queues its token in the same step."""
        pipeline.zadd(self.keys.work_line(checked_kind(kind)), {member(owner_of(key_id), job_id): 0}, nx=True)

    def take(self, kind: str, token: str) -> str | None:
        """The id of the job token ``token`` works on: the one it is bound to, else the job whose turn it
        is (then bound to it); None when no job waits (an extra token)."""
        kind = checked_kind(kind)
        item = self._take([self.keys.work_line(kind), self.keys.work_bound(kind), self.keys.work_passes(kind),
                           self.keys.work_clock(kind), self.keys.share_weights], [token, DEFAULT_WEIGHT])
        return job_of(_text(item)) if item else None

    def done(self, kind: str, token: str) -> None:
        """Token ``token`` ended with no retry coming: it lets go of its job."""
        self._done([self.keys.work_bound(checked_kind(kind))], [token])

    def pending(self, kind: str, key_id: str | None, job_id: str) -> tuple[bool, str | None]:
        """Whether the job waits in ``kind``'s line, and the id of the token bound to it (None if none)."""
        item = member(owner_of(key_id), job_id)
        pipe = self.connection.pipeline(transaction=False)
        pipe.zscore(self.keys.work_line(kind), item)
        pipe.hget(self.keys.work_bound(kind), f"m:{item}")
        waiting, token = pipe.execute()
        return waiting is not None, (_text(token) if token else None)

    def waiting(self, kind: str) -> int:
        """How many jobs wait in ``kind``'s line."""
        return int(self.connection.zcard(self.keys.work_line(checked_kind(kind))))


def checked_kind(kind: str) -> str:
    """``kind``, if it is one of ``KINDS``."""
    if kind not in KINDS:
        raise ValueError(f"not a kind of work: {kind!r}")
    return kind


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
