"""An app key's end users in Redis: what an admin set for each (its limits, its block of the day), its limits' counts,
and its counters of each UTC day.

Bounded per end user: a record only for those an admin set something for; a day's counters (a few fields an end
user active that day, in one hash per key and day, kept ``END_USER_DAYS``); a minute's requests and the ids of its
queued jobs only while its key limits them, each expiring on its own (docs/scaling.md states the bytes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

from redis import Redis
from redis.client import Pipeline

from fluxhook.core import job as st
from fluxhook.core.end_users import EndUserLimits
from fluxhook.core.holds import QUEUED_LIFE
from fluxhook.store.app_keys import RATE_WINDOW
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript, text

# How long after an end user's job was counted its record may still be on its way (its request's creation).
UNMADE_GRACE = 60.0
# The statuses of a job that holds its place under its end user's max_active: being sent (still queued: a send that
# did not happen gives its place back), or at BFL.
_SENDING_OR_AT_BFL = (st.QUEUED, st.SUBMITTED, st.READY)
# The counters of an end user's day (``fluxhook.credits.accounting``): jobs sent, credits spent, and how they ended.
COUNTERS = ("jobs", "credits", "stored", "failed", "canceled", "moderated")


class Verdict(IntEnum):
    """``lua/end_user_take.lua``'s word."""

    TAKEN = 0
    BLOCKED = 1
    MODERATED = 2
    RATE_LIMITED = 3
    QUEUE_FULL = 4


@dataclass(frozen=True)
class EndUserRecord:
    """What an admin set for one end user of a key: its own limits (over the key's defaults), the UTC day it is
    blocked on by hand (None: not), and the moderations forgiven by its last unblock (day, count)."""

    limits: EndUserLimits = EndUserLimits()
    blocked: str | None = None
    lifted: tuple[str, int] | None = None

    @classmethod
    def decode(cls, raw: str | bytes | None) -> EndUserRecord:
        if not raw:
            return cls()
        values = json.loads(raw)
        lifted = values.get("lifted")
        return cls(EndUserLimits.decode(json.dumps(values.get("limits") or {})), values.get("blocked"),
                   (str(lifted[0]), int(lifted[1])) if lifted else None)

    def encode(self) -> str:
        values: dict[str, Any] = {}
        if self.limits:
            values["limits"] = json.loads(self.limits.encode())
        if self.blocked:
            values["blocked"] = self.blocked
        if self.lifted:
            values["lifted"] = list(self.lifted)
        return json.dumps(values, separators=(",", ":"))


@dataclass(frozen=True)
class Taken:
    """The take's word: its verdict, its figure (``Verdict``), the end user's record, and its queued ids (only with
    ``QUEUE_FULL``)."""

    verdict: Verdict
    figure: int
    record: EndUserRecord
    queued: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchAsk:
    """One end user's part of a batch: its limits (0: none) and its items (with a max_queued, its items' job ids)."""

    end_user: str
    requests_per_minute: int
    max_queued: int
    items: int
    job_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchTaken:
    """``lua/end_user_take_batch.lua``'s word: ``TAKEN``, or the verdict of the end user ``refused`` (its ask) with
    its figure (``RATE_LIMITED``: ms until its items fit, 0 never; ``QUEUE_FULL``: its limit, then its queued ids)."""

    verdict: Verdict
    refused: BatchAsk | None = None
    figure: int = 0
    queued: tuple[str, ...] = ()


class EndUsers:
    """The end users of app keys on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._take = LuaScript(connection, "end_user_take")
        self._active = LuaScript(connection, "end_user_active")
        self._take_batch = LuaScript(connection, "end_user_take_batch")

    def take(self, key_id: str, end_user: str, *, job_id: str, member: str, day: str, now: float,
             moderation_limit: int | None, defaults: EndUserLimits) -> Taken:
        """Check and take one new job of ``end_user`` (``lua/end_user_take.lua``)."""
        keys = [self.keys.end_users(key_id), self.keys.end_user_day(key_id, day),
                self.keys.end_user_requests(key_id, end_user), self.keys.end_user_queued(key_id, end_user)]
        verdict, figure, raw, *queued = self._take(keys, [
            end_user, int(now * 1000), int(RATE_WINDOW * 1000), member, job_id, day, moderation_limit or 0,
            defaults.requests_per_minute or 0, defaults.max_queued or 0, int(QUEUED_LIFE * 1000)])
        return Taken(Verdict(int(verdict)), int(figure), EndUserRecord.decode(text(raw)),
                     tuple(text(i) for i in queued))

    def take_batch(self, key_id: str, asks: list[BatchAsk], *, prefix: str, now: float) -> BatchTaken:
        """Check and take a batch's items against each of their end users' requests_per_minute and max_queued, all
        or none (``lua/end_user_take_batch.lua``); ``prefix`` names this request's members in the windows."""
        keys: list[str] = []
        args: list = [int(now * 1000), int(RATE_WINDOW * 1000), prefix, int(QUEUED_LIFE * 1000), len(asks)]
        for ask in asks:
            keys += [self.keys.end_user_requests(key_id, ask.end_user), self.keys.end_user_queued(key_id, ask.end_user)]
            args += [ask.requests_per_minute, ask.max_queued, ask.items, *(ask.job_ids if ask.max_queued else ())]
        verdict, *rest = self._take_batch(keys, args)
        if int(verdict) == Verdict.TAKEN:
            return BatchTaken(Verdict.TAKEN)
        place, figure, *queued = rest
        return BatchTaken(Verdict(int(verdict)), asks[int(place) - 1], int(figure), tuple(text(i) for i in queued))

    def give_back_batch(self, key_id: str, asks: list[BatchAsk], *, prefix: str) -> None:
        """A batch taken was refused after all: its items count against neither their end users' rates nor queues."""
        pipe = self.connection.pipeline(transaction=False)
        for place, ask in enumerate(asks, start=1):
            if ask.requests_per_minute:
                pipe.zrem(self.keys.end_user_requests(key_id, ask.end_user),
                          *(f"{prefix}:{place}:{n}" for n in range(1, ask.items + 1)))
            if ask.max_queued and ask.job_ids:
                pipe.zrem(self.keys.end_user_queued(key_id, ask.end_user), *ask.job_ids)
        pipe.execute()

    def take_active(self, key_id: str, end_user: str, job_id: str, limit: int, now: float) -> bool:
        """Whether the job may go to BFL under its end user's ``max_active`` (``lua/end_user_active.lua``), taking its
        place; those that left BFL are pruned once when its places seem full."""
        key = self.keys.end_user_active(key_id, end_user)
        for _ in range(2):
            held, *ids = self._active([key], [job_id, limit, int(now * 1000), int(QUEUED_LIFE * 1000)])
            if int(held) or not self._prune(key, tuple(text(i) for i in ids), _SENDING_OR_AT_BFL):
                return bool(int(held))
        return False

    def has_active_room(self, key_id: str, end_user: str, limit: int) -> bool:
        """Whether a job of the end user could take a place at BFL now (a look: it takes none)."""
        key = self.keys.end_user_active(key_id, end_user)
        ids = tuple(text(i) for i in self.connection.zrange(key, 0, -1))
        return len(ids) < limit or len(ids) - self._prune(key, ids, _SENDING_OR_AT_BFL) < limit

    def give_back_active(self, key_id: str, end_user: str, job_id: str) -> None:
        """The job was not sent after all: its place at BFL comes back."""
        self.connection.zrem(self.keys.end_user_active(key_id, end_user), job_id)

    def give_back(self, key_id: str, end_user: str, *, job_id: str, member: str) -> None:
        """A taken job was refused after all: it counts against neither the end user's rate nor its queue."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.zrem(self.keys.end_user_requests(key_id, end_user), member)
        pipe.zrem(self.keys.end_user_queued(key_id, end_user), job_id)
        pipe.execute()

    def prune(self, key_id: str, end_user: str, job_ids: tuple[str, ...]) -> int:
        """Drop from the end user's queued ids those whose jobs are no longer queued (a status never returns to
        ``queued``, so a drop is never wrong); how many were dropped."""
        return self._prune(self.keys.end_user_queued(key_id, end_user), job_ids, (st.QUEUED,))

    def _prune(self, key: str, job_ids: tuple[str, ...], still: tuple[str, ...]) -> int:
        """Drop from the ids in ``key`` those whose jobs' status is none of ``still`` (nor will be again: a job
        never goes back to ``queued``, nor from an end to BFL), and those with no record ``UNMADE_GRACE`` s after
        they were counted (a job is counted before its request records it: younger, it may be on its way); how
        many were dropped."""
        if not job_ids:
            return 0
        pipe = self.connection.pipeline(transaction=False)
        pipe.zmscore(key, list(job_ids))
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "status")
        counted_at, *statuses = pipe.execute()
        made_by = (time.time() - UNMADE_GRACE) * 1000
        gone = [job_id for job_id, at, status in zip(job_ids, counted_at, statuses, strict=True)
                if (status is None and (at is None or at < made_by)) or (status is not None and text(status) not in still)]
        if gone:
            self.connection.zrem(key, *gone)
        return len(gone)

    def standing(self, key_id: str, end_users: list[str], day: str) -> list[tuple[EndUserRecord, int]]:
        """Each end user's record and its moderated jobs of ``day``, in one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for end_user in end_users:
            pipe.hget(self.keys.end_users(key_id), end_user)
            pipe.hget(self.keys.end_user_day(key_id, day), f"{end_user}:moderated")
        read = pipe.execute()
        return [(EndUserRecord.decode(read[2 * n]), int(read[2 * n + 1] or 0)) for n in range(len(end_users))]

    def record(self, key_id: str, end_user: str) -> EndUserRecord:
        return EndUserRecord.decode(self.connection.hget(self.keys.end_users(key_id), end_user))

    def change(self, key_id: str, end_user: str, change) -> EndUserRecord:
        """Apply ``change`` (record -> record) to the end user's record in one step (optimistic: retried if it
        changed meanwhile); the record as kept. An empty record is removed."""
        where = self.keys.end_users(key_id)

        def attempt(pipe: Pipeline) -> EndUserRecord:
            changed = change(EndUserRecord.decode(pipe.hget(where, end_user)))
            pipe.multi()
            if changed == EndUserRecord():
                pipe.hdel(where, end_user)
            else:
                pipe.hset(where, end_user, changed.encode())
            return changed

        return cast(EndUserRecord, self.connection.transaction(attempt, where, value_from_callable=True))  # type: ignore[arg-type]

    def counters(self, owner: str, days: list[str]) -> dict[str, dict[str, dict[str, int]]]:
        """Day -> end user -> counter -> count, for ``owner``'s end users on each of ``days``, in one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for day in days:
            pipe.hgetall(self.keys.end_user_day(owner, day))
        found: dict[str, dict[str, dict[str, int]]] = {}
        for day, values in zip(days, pipe.execute(), strict=True):
            per_user: dict[str, dict[str, int]] = {}
            for name, count in values.items():
                end_user, _, counter = text(name).rpartition(":")
                if counter in COUNTERS:
                    per_user.setdefault(end_user, {})[counter] = int(count)
            found[day] = per_user
        return found

    def counters_of(self, owner: str, end_user: str, day: str) -> dict[str, int]:
        read = self.connection.hmget(self.keys.end_user_day(owner, day), [f"{end_user}:{c}" for c in COUNTERS])
        return {counter: int(v or 0) for counter, v in zip(COUNTERS, read, strict=True)}
