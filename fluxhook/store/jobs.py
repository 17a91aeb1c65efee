"""Job records in Redis: create, read, list, delete, and the one place statuses change.

A job is a hash ``fh:job:{id}``; ``fh:bfl:{bfl_id}`` maps BFL's task id to it; ``fh:jobs``
and ``fh:status:{status}`` are lexically ordered sets of ids (ids sort by creation time)
for newest-first listing. ``fh:due`` orders active jobs by when the fallback sweep should
look at them next. Every status change runs one Lua script, so a duplicate or late event
can never move a job out of a terminal status, whichever process sends it; the same script
frees the job's BFL slot (``fh:slots:{pool}``, see ``slots``) once BFL is done with it, and
puts a job that turns terminal with a ``notify_url`` in the notification outbox ``fh:notify``
(see ``notify``), so a finished job and its pending notification are recorded together.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple, Sequence

from redis import Redis
from redis.client import Pipeline

from fluxhook import transitions as st
from fluxhook.errors import InvalidRequest
from fluxhook.job import COUNTERS, Job, decode_hash, encode_fields, is_job_id, job_id_floor

PREFIX = "fh:"
DUE_KEY = f"{PREFIX}due"
# The notification outbox: ids of jobs that turned terminal with a notify_url, by when they are due to be queued.
NOTIFY_KEY = f"{PREFIX}notify"
_TERMINAL_WORDS = " ".join(sorted(st.TERMINAL))

# ARGV: job id, new status ('' = none), allowed current statuses, now, prefix,
#       field that must hold a value ('' = none), that value, due time ('' = keep),
#       counter to add one to ('' = none), lock key to take ('' = none), its value, its TTL in s,
#       number n of field/value arguments, n field/value arguments,
#       commands to run with the change (if a lock is named, only if it was taken), each as its length then its words.
# Returns {done, status before ('' = no job), whether the lock was taken}.
# A job leaving for ready or a terminal status gives back its BFL slot; a terminal job is never due;
# a job turning terminal with a notify_url enters the notification outbox, and drops BFL's URLs.
# The counter, the lock and the commands ride along so that a first Ready callback (the job moved,
# its download lock taken and its RQ task queued) is one round trip to Redis.
_TRANSITION = """
local current = redis.call('HGET', KEYS[1], 'status')
if not current then return {0, '', 0} end
local allowed = false
for s in string.gmatch(ARGV[3], '%S+') do
  if s == current then allowed = true end
end
if not allowed then return {0, current, 0} end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], ARGV[6]) ~= ARGV[7] then return {0, current, 0} end
if ARGV[9] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[9], 1) end
local locked = 0
if ARGV[10] ~= '' and redis.call('SET', ARGV[10], ARGV[11], 'NX', 'EX', ARGV[12]) then locked = 1 end
local last = 13 + tonumber(ARGV[13])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4], unpack(ARGV, 14, last))
for i = 14, last, 2 do
  if ARGV[i] == 'bfl_id' then
    local ttl = redis.call('TTL', KEYS[1])
    if ttl > 0 then redis.call('SET', ARGV[5] .. 'bfl:' .. ARGV[i + 1], ARGV[1], 'EX', ttl)
    else redis.call('SET', ARGV[5] .. 'bfl:' .. ARGV[i + 1], ARGV[1]) end
  end
end
local new = ARGV[2]
local terminal = string.find(' TERMINAL ', ' ' .. new .. ' ', 1, true) ~= nil
if new ~= '' and new ~= current then
  redis.call('HSET', KEYS[1], 'status', new)
  redis.call('ZREM', ARGV[5] .. 'status:' .. current, ARGV[1])
  redis.call('ZADD', ARGV[5] .. 'status:' .. new, 0, ARGV[1])
  local pool = redis.call('HGET', KEYS[1], 'pool')
  if pool and (new == 'ready' or terminal) then
    redis.call('ZREM', ARGV[5] .. 'slots:' .. pool, ARGV[1])
    redis.call('ZREM', ARGV[5] .. 'waiting:' .. pool, ARGV[1])
  end
  if terminal then
    local notify_url = redis.call('HGET', KEYS[1], 'notify_url')
    if notify_url and notify_url ~= '' then redis.call('ZADD', ARGV[5] .. 'notify', ARGV[4], ARGV[1]) end
    -- BFL's URLs are no use once the job has ended. Rewritten without them (and without empty
    -- fields), a record Redis may keep in its compact encoding again takes half the memory.
    local ttl = redis.call('PTTL', KEYS[1])
    local all = redis.call('HGETALL', KEYS[1])
    local keep = {}
    for i = 1, #all, 2 do
      if all[i] ~= 'result_url' and all[i] ~= 'polling_url' and all[i + 1] ~= '' then
        keep[#keep + 1] = all[i]
        keep[#keep + 1] = all[i + 1]
      end
    end
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], unpack(keep))
    if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
  end
end
if terminal then
  redis.call('ZREM', ARGV[5] .. 'due', ARGV[1])
elseif ARGV[8] ~= '' then
  redis.call('ZADD', ARGV[5] .. 'due', ARGV[8], ARGV[1])
end
if ARGV[10] == '' or locked == 1 then
  local i = last + 1
  while i <= #ARGV do
    local n = tonumber(ARGV[i])
    redis.call(unpack(ARGV, i + 1, i + n))
    i = i + n + 1
  end
end
return {1, current, locked}
""".replace("TERMINAL", _TERMINAL_WORDS)

# ARGV: job id, bfl id ('' = none), status, prefix, due time ('' = not due), TTL in s ('' = none),
#       field/value pairs...
_CREATE = """
if ARGV[2] ~= '' then
  local existing = redis.call('GET', ARGV[4] .. 'bfl:' .. ARGV[2])
  if existing and redis.call('EXISTS', ARGV[4] .. 'job:' .. existing) == 1 then return existing end
  redis.call('SET', ARGV[4] .. 'bfl:' .. ARGV[2], ARGV[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7, #ARGV))
redis.call('ZADD', ARGV[4] .. 'jobs', 0, ARGV[1])
redis.call('ZADD', ARGV[4] .. 'status:' .. ARGV[3], 0, ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', ARGV[4] .. 'due', ARGV[5], ARGV[1]) end
if ARGV[6] ~= '' then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
  if ARGV[2] ~= '' then redis.call('EXPIRE', ARGV[4] .. 'bfl:' .. ARGV[2], ARGV[6]) end
end
return ARGV[1]
"""

_INCREMENT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
"""

# ARGV: job id, prefix. Returns false if there was no job, else its storage key ('' if none).
_DELETE = """
local data = redis.call('HMGET', KEYS[1], 'status', 'bfl_id', 'storage_key', 'pool')
if not data[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. 'jobs', ARGV[1])
redis.call('ZREM', ARGV[2] .. 'status:' .. data[1], ARGV[1])
redis.call('ZREM', ARGV[2] .. 'due', ARGV[1])
redis.call('ZREM', ARGV[2] .. 'notify', ARGV[1])
if data[4] then
  redis.call('ZREM', ARGV[2] .. 'slots:' .. data[4], ARGV[1])
  redis.call('ZREM', ARGV[2] .. 'waiting:' .. data[4], ARGV[1])
end
if data[2] and data[2] ~= '' and redis.call('GET', ARGV[2] .. 'bfl:' .. data[2]) == ARGV[1] then
  redis.call('DEL', ARGV[2] .. 'bfl:' .. data[2])
end
return data[3] or ''
"""

# KEYS: the due index (or the notification outbox). ARGV: now, most to take, the claim (score every
# taken job gets until checked).
_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
"""

# KEYS: the due index. ARGV: job id, the claim it was taken with, the score to hold while checking.
_TAKE_CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


# Sets one field of an existing record only: a job deleted meanwhile is not recreated.
_SET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class Lock(NamedTuple):
    """A Redis key set (if free) together with a status change, so the change and the claim are one step."""

    key: str
    value: str
    ttl: int


@dataclass(frozen=True)
class Change:
    """What a transition did: true if the job moved."""

    moved: bool
    # The job's status before ('' if there is no such job).
    previous: str
    # Whether the transition's ``lock`` was free and is now held.
    locked: bool = False

    def __bool__(self) -> bool:
        return self.moved


class JobStore:
    """Job records on one Redis connection.

    With ``ttl`` (seconds), records expire by themselves: a backstop behind the retention task,
    so abandoned data cannot pile up whatever happens to the scheduler.
    """

    def __init__(self, connection: Redis, ttl: int | None = None):
        self.connection = connection
        self.ttl = ttl
        self._transition = connection.register_script(_TRANSITION)
        self._create = connection.register_script(_CREATE)
        self._increment = connection.register_script(_INCREMENT)
        self._delete = connection.register_script(_DELETE)
        self._claim_due = connection.register_script(_CLAIM_DUE)
        self._take_claim = connection.register_script(_TAKE_CLAIM)
        self._set_if_exists = connection.register_script(_SET_IF_EXISTS)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}job:{job_id}"

    def create(self, job: Job, *, due: float | None = None) -> tuple[Job, bool]:
        """Store a new job (due for the sweep at ``due``, if given); for a ``bfl_id`` already tracked,
        return that job instead. Returns (job, created)."""
        fields = {k: v for k, v in job.__dict__.items() if v is not None}
        stored_id = self._create(
            keys=[self.key(job.id)],
            args=[job.id, job.bfl_id or "", job.status, PREFIX, _score(due), self.ttl or "", *encode_fields(fields)],
        )
        stored_id = stored_id.decode() if isinstance(stored_id, bytes) else stored_id
        if stored_id != job.id:
            existing = self.get(stored_id)
            if existing is not None:
                return existing, False
        return job, True

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        if not is_job_id(job_id):
            return None
        data = self.connection.hgetall(self.key(job_id))
        return Job.from_hash(decode_hash(data)) if data else None

    def get_by_bfl_id(self, bfl_id: str) -> Job | None:
        """The job tracking BFL task ``bfl_id``, or None."""
        job_id = self.connection.get(f"{PREFIX}bfl:{bfl_id}")
        return self.get(job_id.decode() if isinstance(job_id, bytes) else job_id) if job_id else None

    def transition(self, job_id: str, new_status: str, *, only_from: tuple[str, ...] | None = None,
                   if_equal: tuple[str, str] | None = None, due: float | None = None, count: str | None = None,
                   lock: Lock | None = None, then: Sequence[Pipeline] = (), **fields: Any) -> Change:
        """Move the job to ``new_status`` and set ``fields``, atomically; a false Change if the rules forbid it.

        ``only_from`` narrows the statuses it may move from; ``if_equal`` is a (field, value) that must hold;
        ``due`` is when the sweep should next look at the job (terminal jobs are never due). With the move
        come one more ``attempts.<count>`` and the ``lock`` key, taken if free (``Change.locked``); the
        commands queued on ``then`` (pipelines never executed) run in the same step if the job moved
        (and took the lock, if one is named).
        """
        allowed = tuple(s for s in st.sources_for(new_status) if only_from is None or s in only_from)
        return self._apply(job_id, new_status, allowed, fields, if_equal, due, count, lock, then)

    def update(self, job_id: str, *, only_in: tuple[str, ...] = st.ACTIVE, due: float | None = None,
               **fields: Any) -> bool:
        """Set ``fields`` (and the ``due`` time) if the job's status is one of ``only_in`` (any non-terminal one by default)."""
        return self._apply(job_id, "", only_in, fields, None, due).moved

    def _apply(self, job_id: str, new_status: str, allowed: tuple[str, ...], fields: dict[str, Any],
               if_equal: tuple[str, str] | None, due: float | None, count: str | None = None,
               lock: Lock | None = None, then: Sequence[Pipeline] = ()) -> Change:
        if count is not None and count not in COUNTERS:
            raise ValueError(count)
        now = time.time()
        if new_status in st.TERMINAL:
            fields.setdefault("completed_at", now)
        compare_field, compare_value = if_equal or ("", "")
        lock_args = (lock.key, lock.value, lock.ttl) if lock else ("", "", "")
        encoded = encode_fields(fields)
        commands: list[Any] = []
        for words, _options in (command for pipeline in then for command in pipeline.command_stack):
            commands += [len(words), *words]
        done, previous, locked = self._transition(
            keys=[self.key(job_id)],
            args=[job_id, new_status, " ".join(allowed), repr(now), PREFIX, compare_field, compare_value,
                  _score(due), count or "", *lock_args, len(encoded), *encoded, *commands],
        )
        return Change(bool(done), previous.decode() if isinstance(previous, bytes) else previous, bool(locked))

    def claim_due(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` jobs due by ``now``, oldest first, marking each with ``claim`` (a future time).

        Atomic: two sweeps never take the same job. A claimed job comes due again at ``claim`` if
        nobody checks it (a lost task), so nothing is dropped.
        """
        ids = self._claim_due(keys=[DUE_KEY], args=[repr(now), limit, _score(claim)])
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def take_claim(self, job_id: str, claim: float, hold_until: float) -> bool:
        """Whether this check still owns the job's ``claim`` (then held until ``hold_until``); False if another has it."""
        return bool(self._take_claim(keys=[DUE_KEY], args=[job_id, _score(claim), _score(hold_until)]))

    def claim_notifications(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` jobs from the notification outbox, oldest first, marking each with ``claim``.

        Atomic like ``claim_due``: two sweeps never take the same job. A taken job stays in the outbox
        (due again at ``claim``) until ``notifications_queued`` removes it with the enqueue of its task.
        """
        ids = self._claim_due(keys=[NOTIFY_KEY], args=[repr(now), limit, _score(claim)])
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def notifications_queued(self, job_ids: list[str], pipeline=None) -> None:
        """Remove jobs from the outbox: on ``pipeline``, the same MULTI that queues their tasks."""
        (pipeline if pipeline is not None else self.connection).zrem(NOTIFY_KEY, *job_ids)

    def mark_notified(self, job_id: str, when: float) -> bool:
        """Record that the job's notification was delivered; False if the job is gone.

        Not an ``update``: the job is terminal (its state never changes again), and this leaves
        ``updated_at`` alone, so the job JSON reads the same before and after.
        """
        return bool(self._set_if_exists(keys=[self.key(job_id)], args=["notified_at", repr(when)]))

    def set_thumbnail(self, job_id: str, key: str) -> bool:
        """Record the stored job's thumbnail; False if the job is gone. Bookkeeping, like ``mark_notified``."""
        return bool(self._set_if_exists(keys=[self.key(job_id)], args=["thumbnail_key", key]))

    def due_at(self, job_id: str) -> float | None:
        """When the sweep will next look at the job; None if never."""
        return self.connection.zscore(DUE_KEY, job_id)

    def count(self, job_id: str, counter: str) -> int:
        """Add one to ``attempts.<counter>``; -1 if the job is gone (never recreates a deleted job)."""
        if counter not in COUNTERS:
            raise ValueError(counter)
        return int(self._increment(keys=[self.key(job_id)], args=[counter]))

    def list(self, status: str | None = None, limit: int = 50, cursor: str | None = None) -> tuple[list[Job], str | None]:
        """Jobs newest first, ``limit`` at a time; the cursor is the last id of the previous page."""
        if status is not None and status not in st.STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(st.STATUSES)}")
        if cursor is not None and not is_job_id(cursor):
            raise InvalidRequest("cursor is not one this service issued")
        index = f"{PREFIX}status:{status}" if status else f"{PREFIX}jobs"
        ids = self.connection.zrevrangebylex(index, f"({cursor}" if cursor else "+", "-", start=0, num=limit + 1)
        ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
        page, more = ids[:limit], len(ids) > limit
        pipe = self.connection.pipeline(transaction=False)
        for job_id in page:
            pipe.hgetall(self.key(job_id))
        jobs = [Job.from_hash(decode_hash(d)) for d in pipe.execute() if d]
        return jobs, (page[-1] if more and page else None)

    def created_before(self, when: float, limit: int) -> list[str]:
        """Ids of up to ``limit`` jobs made before ``when``, oldest first (reads only those)."""
        ids = self.connection.zrangebylex(f"{PREFIX}jobs", "-", f"({job_id_floor(when)}", start=0, num=limit)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def forget(self, job_id: str) -> None:
        """Drop a job id whose record has already expired from every index."""
        pipe = self.connection.pipeline()
        pipe.zrem(f"{PREFIX}jobs", job_id)
        pipe.zrem(DUE_KEY, job_id)
        pipe.zrem(NOTIFY_KEY, job_id)
        for status in st.STATUSES:
            pipe.zrem(f"{PREFIX}status:{status}", job_id)
        pipe.execute()

    def delete(self, job_id: str) -> str | None:
        """Remove the record and its indexes; returns its storage key as it was then ('' if none), None if no job."""
        if not is_job_id(job_id):
            return None
        key = self._delete(keys=[self.key(job_id)], args=[job_id, PREFIX])
        return None if key is None else (key.decode() if isinstance(key, bytes) else key)


def _score(when: float | None) -> str:
    """A time as a sorted-set score argument; '' for none. Millisecond precision, so claims compare exactly."""
    return "" if when is None else f"{when:.3f}"
