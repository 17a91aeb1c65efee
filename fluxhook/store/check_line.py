"""The check line: the due jobs the sweep claimed, waiting for a worker's check, taken fairly across keys.

The sweep claims a due job by moving its score in the due index a lease ahead (``JobStore.claim_due``), and adds it
here; a worker's dispatcher takes it in turn for its checkers (``take``) and checks it (``checking.check_job``), which holds it
by the same claim. The line is the slots' and the work lines' rule again (``lua/fair_turns.lua``): turns across owners,
each check a turn costing 1 / the owner's ``weight``, and within an owner's turns its single jobs before its batch
items (``owners.member``'s bulk form sorts after). So one key's thousands of overdue polls delay another key's check by
the checks already running, not by the backlog.

Each BFL account has a line of its own (``Keys.check_line(account)``): a job's check waits in the line of the account
that sent its task, or in the first account's when that is none configured here (no task yet, or its account since
removed: such a check reaches no account's BFL). The turns across keys are one rule over every line (one passes
hash); a take says how many checks each account may have now (``take``'s ``rooms``): a worker gives each account
checkers of its own (``worker/checkers.py``).

Nothing here needs a recovery of its own: a job in the line, or taken and never checked (its process died), is due
again in the due index once its claim lapses, and the sweep claims it again (the one rule, "its lease lapsed, it is
due again"). A job claimed again while it still waits is in the line once, with its newest claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from redis import Redis

from fluxhook.core.accounts import DEFAULT_ACCOUNT
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT, member, owner_of
from fluxhook.store.scripts import LuaScript, text
from fluxhook.store.wakes import push


@dataclass(frozen=True)
class Check:
    """A check taken from the line: its job, the claim it holds the job by, and the account whose line it waited in."""

    job_id: str
    claim: float
    account: str = DEFAULT_ACCOUNT


class CheckLine:
    """The check lines of ``accounts`` (names, the configured order), on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS, accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,)):
        self.connection = connection
        self.keys = keys
        self.accounts = accounts
        self._take = LuaScript(connection, "check_take")

    def line_of(self, account: str | None) -> str:
        """The account whose line a job of ``account``'s task waits in: that one, or the first when it is none here."""
        return account if account in self.accounts else self.accounts[0]

    def add(self, job_ids: list[str], claim: float) -> None:
        """Put the jobs the sweep claimed with ``claim`` in line (each once, with its newest claim), and wake a check
        dispatcher: two round trips, the first reading each job's key, batch, deadline and account, whatever the
        number."""
        if not job_ids:
            return
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), "key_id", "batch_id", "deadline", "account", "end_user")
        records = pipe.execute()
        lines: dict[str, dict[str, int]] = {}
        for job_id, (key_id, batch_id, deadline, account, end_user) in zip(job_ids, records, strict=True):
            line = lines.setdefault(self.line_of(text(account) if account else None), {})
            line[member(owner_of(text(key_id) if key_id else None), job_id, bulk=bool(batch_id),
                        deadline=float(deadline) if deadline else None, end_user=text(end_user) if end_user else None)] = 0
        pipe = self.connection.pipeline(transaction=False)
        pipe.hset(self.keys.check_claims, mapping=dict.fromkeys(job_ids, repr(claim)))
        for account, line in lines.items():
            pipe.zadd(self.keys.check_line(account), line, nx=True)
        push(pipe, self.keys.check_added)
        pipe.execute()

    def take(self, most: int, rooms: Mapping[str, int] | None = None) -> list[Check]:
        """Up to ``most`` checks whose turn it is, each now the caller's to run (``lua/check_take.lua``), at most
        ``rooms[account]`` of each account's line (an account not named: none; ``rooms`` None: ``most`` of each);
        checks left in line for an account with room wake another dispatcher."""
        rooms = dict.fromkeys(self.accounts, most) if rooms is None else rooms
        if most <= 0 or not any(rooms.values()):
            return []
        answer = self._take([self.keys.share_weights, self.keys.check_passes, self.keys.check_claims,
                             self.keys.check_added, *map(self.keys.check_line, self.accounts)],
                            [most, DEFAULT_WEIGHT, *(rooms.get(account, 0) for account in self.accounts)])
        return [Check(text(answer[i]), float(answer[i + 1]), self.accounts[int(answer[i + 2]) - 1])
                for i in range(0, len(answer), 3)]

    def claim_of(self, job_id: str) -> float | None:
        """The claim the job's check waits in line with; None if it waits in none."""
        claim = self.connection.hget(self.keys.check_claims, job_id)
        return None if claim is None else float(claim)

    def waiting(self) -> int:
        """How many checks wait in line, every account's."""
        return sum(self.waiting_by_account().values())

    def waiting_by_account(self) -> dict[str, int]:
        """How many checks wait in each account's line: one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for account in self.accounts:
            pipe.zcard(self.keys.check_line(account))
        return dict(zip(self.accounts, map(int, pipe.execute()), strict=True))
