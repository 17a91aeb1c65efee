"""BFL concurrency slots: at most ``BFL_MAX_ACTIVE`` tasks in flight, shared by every process.

Each pool (``flux-kontext-max`` has its own limit, every other model shares ``default``) has a
sorted set of slot holders scored by when they took the slot, and a FIFO of waiting jobs
scored by creation time. Taking and handing out slots are Lua scripts, so web and worker
processes can never over-commit; slots are given back by the job-record transition script
when a job reaches ``ready`` or a terminal status (see ``jobs``). A job that never finishes
loses its slot after ``SLOT_LEASE`` seconds.
"""

from __future__ import annotations

import time

from redis import Redis

from .config import Config
from .jobs import PREFIX, Job

DEFAULT_POOL = "default"
KONTEXT_MAX_POOL = "flux-kontext-max"
POOLS = (DEFAULT_POOL, KONTEXT_MAX_POOL)
# The one-hour limit on a task, plus the sweep's margin to time the job out first.
SLOT_LEASE = 3600 + 120
# A job given a slot must reach BFL within this long, or the sweep hands it back to the queue
# (once the submission's lock, as long, has lapsed: see submission).
SUBMIT_LEASE = 90

# Shared prelude: ARGV[1] prefix, ARGV[2] pool, ARGV[3] now; drops slots held past the lease.
_PRELUDE = """
local slots = ARGV[1] .. 'slots:' .. ARGV[2]
local waiting = ARGV[1] .. 'waiting:' .. ARGV[2]
local paused = redis.call('EXISTS', ARGV[1] .. 'paused:' .. ARGV[2]) == 1
redis.call('ZREMRANGEBYSCORE', slots, '-inf', tonumber(ARGV[3]) - SLOT_LEASE)
""".replace("SLOT_LEASE", str(SLOT_LEASE))

# ARGV: prefix, pool, now, job id, limit, its place in line (creation time).
# A slot only if nobody waits before it: the line is first come, first served.
_ACQUIRE = _PRELUDE + """
if not paused and redis.call('ZCARD', waiting) == 0 and redis.call('ZCARD', slots) < tonumber(ARGV[5]) then
  redis.call('ZADD', slots, ARGV[3], ARGV[4])
  redis.call('ZADD', ARGV[1] .. 'due', tonumber(ARGV[3]) + SUBMIT_LEASE, ARGV[4])
  return 1
end
redis.call('ZADD', waiting, ARGV[6], ARGV[4])
return 0
""".replace("SUBMIT_LEASE", str(SUBMIT_LEASE))

# ARGV: prefix, pool, now, limit, most to hand out. Returns the jobs given a slot, first in line first.
_DISPATCH = _PRELUDE + """
local given = {}
if paused then return given end
while #given < tonumber(ARGV[5]) and redis.call('ZCARD', slots) < tonumber(ARGV[4]) do
  local head = redis.call('ZRANGE', waiting, 0, 0)[1]
  if not head then break end
  redis.call('ZREM', waiting, head)
  if redis.call('HGET', ARGV[1] .. 'job:' .. head, 'status') == 'queued' then
    redis.call('ZADD', slots, ARGV[3], head)
    redis.call('ZADD', ARGV[1] .. 'due', tonumber(ARGV[3]) + SUBMIT_LEASE, head)
    given[#given + 1] = head
  end
end
return given
""".replace("SUBMIT_LEASE", str(SUBMIT_LEASE))

# ARGV: prefix, pool, now, job id, its place in line, pause in ms (0 = none).
# Back in line at its old place (so still first come, first served) and out of the due index.
_REQUEUE = _PRELUDE + """
if redis.call('HGET', ARGV[1] .. 'job:' .. ARGV[4], 'status') ~= 'queued' then return 0 end
redis.call('ZREM', slots, ARGV[4])
redis.call('ZREM', ARGV[1] .. 'due', ARGV[4])
redis.call('ZADD', waiting, ARGV[5], ARGV[4])
if tonumber(ARGV[6]) > 0 then
  local left = redis.call('PTTL', ARGV[1] .. 'paused:' .. ARGV[2])
  if left < tonumber(ARGV[6]) then redis.call('SET', ARGV[1] .. 'paused:' .. ARGV[2], 1, 'PX', ARGV[6]) end
end
return 1
"""


def pool_for(model: str | None) -> str:
    """The slot pool a model's tasks count against."""
    return KONTEXT_MAX_POOL if model == KONTEXT_MAX_POOL else DEFAULT_POOL


def pool_limit(config: Config, pool: str) -> int:
    """How many of the pool's tasks may be in flight at once."""
    if pool == KONTEXT_MAX_POOL:
        # BFL's 6 for flux-kontext-max comes on top of its overall limit: never more than BFL_MAX_ACTIVE.
        return min(config.bfl_max_active_kontext_max, config.bfl_max_active)
    return config.bfl_max_active


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
        return bool(self._acquire(args=[PREFIX, pool, repr(time.time()), job.id, pool_limit(self.config, pool),
                                        repr(job.created_at)]))

    def dispatch(self, pool: str, limit: int = 100) -> list[str]:
        """Hand free slots of ``pool`` to waiting jobs, first in line first; returns their ids."""
        given = self._dispatch(args=[PREFIX, pool, repr(time.time()), pool_limit(self.config, pool), limit])
        return [g.decode() if isinstance(g, bytes) else g for g in given]

    def requeue(self, job: Job, pause: float = 0.0) -> bool:
        """Give back the ``queued`` job's slot and put it back in line at its old place.

        ``pause`` seconds (BFL's Retry-After) hold the whole pool: BFL said it is full.
        """
        pool = job.pool or pool_for(job.model)
        return bool(self._requeue(args=[PREFIX, pool, repr(time.time()), job.id, repr(job.created_at),
                                        int(pause * 1000)]))

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
