"""The workers' work lines: downloads and draft caches, taken fairly across keys.

RQ takes tasks first in, first out, so one key's 150 results queued together would hold another key's one behind them.
So work waits in its kind's line first (added with the job's change of status: ``AddWork``), and only a few tasks at a
time are in RQ: as lanes free, the jobs whose turn it is move from the lines into RQ (``take``; the caller then queues
one RQ task per job), in turn across keys by the slots' own rule (``lua/fair_turns.lua``): start-time fair queueing over
owners, each task a turn costing 1 / the owner's ``weight`` (``Keys.share_weights``). So one key's backlog delays
another key's result by the few tasks already in RQ, not by the backlog. Within an owner's turns, its single jobs go
before its batch items, then the earliest deadline, as in the slots' lines (``owners.member``).

Adding work wakes one worker's dispatcher for its feeds (``Keys.work_added``, ``store.wakes``), but for work that goes
straight to RQ's door: when no line holds any work and its queue has room, its turn is now, and the step that adds it
takes it as a feed would (``lua/effects.lua``), so its own caller queues its task, with no wake-up and no take. A job
taken is held by a lease like the rest of fluxhook's own work, and by nothing else: its due time ``MOVE_LEASE`` after
the take (``lua/work_moves.lua``), until the MULTI that queues its RQ task (``queued``). If its process dies in
between, the job comes due and its check puts the work back in line (``lifecycle.checking``). From RQ on, the task is
RQ's: its retries and a dead worker's hand-back name the same job.

A queue's room is ``AHEAD`` less the tasks in it (and those the same take took): work taken and not yet queued is
not counted, which would be a second hold on it. So only takes between another take and its queueing MULTI (one round
trip) overfill a queue: by at most one ``AHEAD`` for each other feed taking then (a lane's or a dispatcher's, of any
process), one task for each step taking at once then. Takes one after another never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from redis import Redis

from fluxhook.core.holds import MOVE_LEASE
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT, forms, member_job, owner_of
from fluxhook.store.scripts import LuaScript, text, time_score

# Downloads wait in one line per life of their result URLs, shortest first (``lifecycle.steps.enqueueing.download_line``):
# URLs that live 10 minutes (FLUX.1 and FLUX.2 images), an hour (FLUX 3 Image, BFL's tools), longer (video).
DOWNLOAD = "download"
DOWNLOAD_HOUR = "download_hour"
DOWNLOAD_LONG = "download_long"
DOWNLOADS = (DOWNLOAD, DOWNLOAD_HOUR, DOWNLOAD_LONG)
DRAFT_CACHE = "draft_cache"
# In the order their work is moved into RQ when room is short: the results whose URLs expire first.
KINDS = (*DOWNLOADS, DRAFT_CACHE)
# Tasks of the work lines that may wait in each RQ queue beyond those running: a job whose turn comes
# later waits behind these few, not behind another key's backlog.
AHEAD = 4


@dataclass(frozen=True)
class Taken:
    """What one take moved: the members taken, by kind (the kinds with any); ``idle``: no line held work at all."""

    items: dict[str, list[str]]
    idle: bool = False

    @property
    def moved(self) -> int:
        return sum(len(members) for members in self.items.values())


class WorkLines:
    """The work lines of every kind, on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._take = LuaScript(connection, "work_take")

    def line_keys(self) -> tuple[str, ...]:
        """Every kind's line: what a dispatcher at rest watches for its feeds (``store.wakes.Watched``)."""
        return tuple(self.keys.work_line(kind) for kind in KINDS)

    def take(self, queues: Mapping[str, str], ahead: int, now: float) -> Taken:
        """Members (``<owner>:<job id>``, see ``owners.member_job``) from the lines of the kinds in ``queues`` (kind ->
        the RQ queue its tasks go to, a list), kind by kind in that order, one turn at a time across keys, while fewer
        than ``ahead`` tasks wait in a kind's RQ queue (or were taken for it by this take); by kind, the kinds with any
        taken, each job held by its move's lease (``lua/work_moves.lua``). One script for every kind; lines with no
        work cost next to nothing (``lua/work_take.lua``), and ``Taken.idle`` says none held any."""
        kinds = [checked_kind(kind) for kind in queues]
        keys = [self.keys.share_weights, self.keys.due]
        for kind in kinds:
            keys += [self.keys.work_line(kind), self.keys.work_passes(kind), queues[kind]]
        # Nothing at all (no list a kind) when no line holds work.
        answer = self._take(keys, [ahead, repr(now), DEFAULT_WEIGHT, MOVE_LEASE])
        lists = answer or [[] for _ in kinds]
        return Taken({kind: [text(item) for item in items] for kind, items in zip(kinds, lists, strict=True) if items},
                     idle=not answer)

    def queued(self, kind: str, members: list[str], pipeline) -> None:
        """On ``pipeline`` (the MULTI that queues their RQ tasks): the ``members`` taken are in RQ. A draft cache's job
        (stored) is due no more: its move's lease was all that made it due; a download's job (ready) stays due as its
        move left it, for its check to find its download in RQ."""
        if members and checked_kind(kind) == DRAFT_CACHE:
            pipeline.zrem(self.keys.due, *map(member_job, members))

    def pending(self, kind: str, key_id: str | None, job_id: str, deadline: float | None = None,
                end_user: str | None = None, *, hold: float | None = None) -> bool:
        """Whether the job's work (with its ``deadline`` and ``end_user``) waits in ``kind``'s line, in any form of
        its member (``owners.forms``), or, for a check whose claim set the job's due time to ``hold``, was taken for RQ
        since (its task may be queued any moment, and must not be twice): a due time no longer ``hold``, or gone, says a
        step acted on the job since (a take writes its move's lease there, which its value alone does not tell from
        other due times). The line is read first, so a take in between is seen by the second read. Without ``hold``, the
        line alone answers."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.zmscore(self.keys.work_line(kind), forms(owner_of(key_id), job_id, deadline, end_user))
        if hold is not None:
            pipe.zscore(self.keys.due, job_id)
        waiting, *due = pipe.execute()
        if any(score is not None for score in waiting):
            return True
        return bool(due) and (due[0] is None or float(due[0]) != float(time_score(hold)))

    def waiting(self, kind: str) -> int:
        return int(self.connection.zcard(self.keys.work_line(checked_kind(kind))))


def checked_kind(kind: str) -> str:
    """``kind``, if it is one of ``KINDS``."""
    if kind not in KINDS:
        raise ValueError(f"not a kind of work: {kind!r}")
    return kind

