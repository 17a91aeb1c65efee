"""BFL concurrency slots: at most ``BFL_MAX_ACTIVE`` tasks in flight, shared by every process.

Each pool (``flux-kontext-max``, with its own smaller limit, and ``default`` for every other
model) has a sorted set of slot holders scored by when they took the slot, and a FIFO of
waiting jobs scored by creation time. Every task counts toward ``BFL_MAX_ACTIVE``; a
``flux-kontext-max`` task also toward its pool's limit. Taking and handing out slots are Lua
scripts over both pools, so web and worker processes can never over-commit and the lines stay
first come, first served across pools; slots are given back by the job-record transition
script when a job reaches ``ready`` or a terminal status (see ``jobs``). A job that never
finishes loses its slot after ``SLOT_LEASE`` seconds.
"""

from __future__ import annotations

import time

from redis import Redis

from fluxhook.config import Config
from fluxhook.limits import DEFAULT_POOL, KONTEXT_MAX_POOL, SLOT_LEASE, SUBMIT_LEASE, pool_for, pool_limit
from fluxhook.store.jobs import PREFIX
from fluxhook.job import Job

# Shared prelude. ARGV[1] prefix, ARGV[2] now, ARGV[3] BFL_MAX_ACTIVE, ARGV[4] the kontext-max pool's
# limit. Drops slots held past the lease; room(pool): a slot of it may be taken now.
_PRELUDE = """
local prefix, now = ARGV[1], tonumber(ARGV[2])
local total = tonumber(ARGV[3])
local limits = {['DEFAULT'] = total, ['KONTEXT'] = tonumber(ARGV[4])}
local pools = {'DEFAULT', 'KONTEXT'}
for _, pool in ipairs(pools) do
  redis.call('ZREMRANGEBYSCORE', prefix .. 'slots:' .. pool, '-inf', now - SLOT_LEASE)
end
local function held(pool) return redis.call('ZCARD', prefix .. 'slots:' .. pool) end
local function room(pool)
  if redis.call('EXISTS', prefix .. 'paused:' .. pool) == 1 then return false end
  return held(pool) < limits[pool] and held('DEFAULT') + held('KONTEXT') < total
end
local function waiting(pool) return prefix .. 'waiting:' .. pool end
local function take(pool, job)
  redis.call('ZADD', prefix .. 'slots:' .. pool, now, job)
  redis.call('ZADD', prefix .. 'due', now + SUBMIT_LEASE, job)
end
""".replace("SLOT_LEASE", str(SLOT_LEASE)).replace("SUBMIT_LEASE", str(SUBMIT_LEASE)) \
    .replace("'DEFAULT'", repr(DEFAULT_POOL)).replace("'KONTEXT'", repr(KONTEXT_MAX_POOL))

# ARGV 5-7: pool, job id, its place in line (creation time). A slot only if nobody who could use
# it waits in either line: first come, first served.
_ACQUIRE = _PRELUDE + """
local pool, job = ARGV[5], ARGV[6]
local ahead = false
for _, other in ipairs(pools) do
  if redis.call('ZCARD', waiting(other)) > 0 and room(other) then ahead = true end
end
if room(pool) and not ahead then
  take(pool, job)
  return 1
end
redis.call('ZADD', waiting(pool), ARGV[7], job)
return 0
"""

# ARGV 5: most to hand out. Returns the jobs given a slot: the earliest in either line first,
# of the pools that have room.
_DISPATCH = _PRELUDE + """
local given = {}
while #given < tonumber(ARGV[5]) do
  local best_pool, best_job, best_place = nil, nil, nil
  for _, pool in ipairs(pools) do
    if room(pool) then
      local head = redis.call('ZRANGE', waiting(pool), 0, 0, 'WITHSCORES')
      if head[1] and (best_place == nil or tonumber(head[2]) < best_place) then
        best_pool, best_job, best_place = pool, head[1], tonumber(head[2])
      end
    end
  end
  if not best_job then break end
  redis.call('ZREM', waiting(best_pool), best_job)
  if redis.call('HGET', prefix .. 'job:' .. best_job, 'status') == 'queued' then
    take(best_pool, best_job)
    given[#given + 1] = best_job
  end
end
return given
"""

# ARGV 5-8: pool, job id, its place in line, pause in ms (0 = none).
# Back in line at its old place (so still first come, first served) and out of the due index.
_REQUEUE = _PRELUDE + """
local pool, job = ARGV[5], ARGV[6]
if redis.call('HGET', prefix .. 'job:' .. job, 'status') ~= 'queued' then return 0 end
redis.call('ZREM', prefix .. 'slots:' .. pool, job)
redis.call('ZREM', prefix .. 'due', job)
redis.call('ZADD', waiting(pool), ARGV[7], job)
if tonumber(ARGV[8]) > 0 then
  local left = redis.call('PTTL', prefix .. 'paused:' .. pool)
  if left < tonumber(ARGV[8]) then redis.call('SET', prefix .. 'paused:' .. pool, 1, 'PX', ARGV[8]) end
end
return 1
"""


class Slots:
    """The slot pools on one Redis connection."""

    def __init__(self, connection: Redis, config: Config):
        self.connection = connection
        self.config = config
        self._acquire = connection.register_script(_ACQUIRE)
        self._dispatch = connection.register_script(_DISPATCH)
        self._requeue = connection.register_script(_REQUEUE)

    def acquire(self, job: Job) -> bool:
        """Give the ``queued`` job a slot now (True), or put it in line for one (False)."""
        pool = job.pool or pool_for(job.model)
        return bool(self._acquire(args=[*self._prelude_args(), pool, job.id, repr(job.created_at)]))

    def dispatch(self, limit: int = 100) -> list[str]:
        """Hand free slots to waiting jobs, the earliest in either line first; returns their ids."""
        given = self._dispatch(args=[*self._prelude_args(), limit])
        return [g.decode() if isinstance(g, bytes) else g for g in given]

    def requeue(self, job: Job, pause: float = 0.0) -> bool:
        """Give back the ``queued`` job's slot and put it back in line at its old place.

        ``pause`` seconds (BFL's Retry-After) hold the whole pool: BFL said it is full.
        """
        pool = job.pool or pool_for(job.model)
        return bool(self._requeue(args=[*self._prelude_args(), pool, job.id, repr(job.created_at),
                                        int(pause * 1000)]))

    def _prelude_args(self) -> list:
        return [PREFIX, repr(time.time()), pool_limit(self.config, DEFAULT_POOL),
                pool_limit(self.config, KONTEXT_MAX_POOL)]

    def accepted(self, pool: str) -> None:
        """BFL accepted a task: the next refusal starts the backoff afresh."""
        self.connection.delete(_strikes_key(pool))

    def strike(self, pool: str) -> int:
        """Count one more refusal in a row from BFL for ``pool``; returns the count."""
        key = _strikes_key(pool)
        pipe = self.connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, 3600)
        return int(pipe.execute()[0])

    def in_flight(self, pool: str) -> int:
        """How many slots of ``pool`` are held."""
        return int(self.connection.zcard(f"{PREFIX}slots:{pool}"))

    def waiting(self, pool: str) -> int:
        """How many jobs wait in line for ``pool``."""
        return int(self.connection.zcard(f"{PREFIX}waiting:{pool}"))


def _strikes_key(pool: str) -> str:
    return f"{PREFIX}strikes:{pool}"
