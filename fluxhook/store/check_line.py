"""The check line: the due jobs the sweep claimed, waiting for a worker's check, taken fairly across keys.

The sweep claims a due job by moving its score in the due index a lease ahead (``JobStore.claim_due``), and adds it
here; a worker's check dispatcher takes it in turn (``take``) and checks it (``checking.check_job``), which holds it
by the same claim. The line is the slots' and the work lines' rule again (``lua/fair_turns.lua``): turns across owners,
each check a turn costing 1 / the owner's ``weight``, and within an owner's turns its single jobs before its batch
items (``owners.member``'s bulk form sorts after). So one key's thousands of overdue polls delay another key's check by
the checks already running, not by the backlog.

Nothing here needs a recovery of its own: a job in the line, or taken and never checked (its process died), is due
again in the due index once its claim lapses, and the sweep claims it again (the one rule, "its lease lapsed, it is
due again"). A job claimed again while it still waits is in the line once, with its newest claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT, member, owner_of
from fluxhook.store.replies import text
from fluxhook.store.scripts import LuaScript
from fluxhook.store.wakes import push


@dataclass(frozen=True)
class Check:
    """A check taken from the line: its job and the claim it holds the job by."""

    job_id: str
    claim: float


class CheckLine:
    """The check line, on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._take = LuaScript(connection, "check_take")

    def add(self, job_ids: list[str], claim: float) -> None:
        """Put the jobs the sweep claimed with ``claim`` in line (each once, with its newest claim), and wake a check
        dispatcher: two round trips, the first reading each job's key, batch and deadline, whatever the number."""
        if not job_ids:
            return
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), "key_id", "batch_id", "deadline", "end_user")
        records = pipe.execute()
        line: dict[str, int] = {}
        for job_id, (key_id, batch_id, deadline, end_user) in zip(job_ids, records, strict=True):
            line[member(owner_of(text(key_id) if key_id else None), job_id, bulk=bool(batch_id),
                        deadline=float(deadline) if deadline else None, end_user=text(end_user) if end_user else None)] = 0
        pipe = self.connection.pipeline(transaction=False)
        pipe.hset(self.keys.check_claims, mapping=dict.fromkeys(job_ids, repr(claim)))
        pipe.zadd(self.keys.check_line, line, nx=True)
        push(pipe, self.keys.check_added)
        pipe.execute()

    def take(self, most: int) -> list[Check]:
        """Up to ``most`` checks whose turn it is, each now the caller's to run (``lua/check_take.lua``); checks left in
        line wake another dispatcher."""
        if most <= 0:
            return []
        answer = self._take([self.keys.share_weights, self.keys.check_line, self.keys.check_passes,
                             self.keys.check_claims, self.keys.check_added], [most, DEFAULT_WEIGHT])
        return [Check(text(answer[i]), float(answer[i + 1])) for i in range(0, len(answer), 2)]

    def claim_of(self, job_id: str) -> float | None:
        """The claim the job's check waits in line with; None if it waits in none."""
        claim = self.connection.hget(self.keys.check_claims, job_id)
        return None if claim is None else float(claim)

    def waiting(self) -> int:
        """How many checks wait in line."""
        return int(self.connection.zcard(self.keys.check_line))
