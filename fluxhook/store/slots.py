"""BFL concurrency slots: at most ``BFL_MAX_ACTIVE`` tasks in flight, shared by every process.

Each pool (see ``fluxhook.limits``) has a sorted set of slot holders scored by when they took the
slot, and a FIFO line of waiting jobs scored by creation time. Every task counts toward
``BFL_MAX_ACTIVE`` and toward its pool's limit. Taking and handing out slots are Lua scripts over
all pools, so web and worker processes can never over-commit and the lines stay first come, first
served across pools; a job's change of status gives its slot back (``JobStore.transition``). A job
that never finishes loses its slot after ``SLOT_LEASE`` seconds.
"""

from __future__ import annotations

import time

from redis import Redis

from fluxhook.config import Config
from fluxhook.job import Job
from fluxhook.limits import SLOT_LEASE, SUBMIT_LEASE, pool_for, pool_limit, pools
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript


class Slots:
    """The slot pools on one Redis connection."""

    def __init__(self, connection: Redis, config: Config, keys: Keys = KEYS):
        self.connection = connection
        self.config = config
        self.keys = keys
        self.pools = pools(config.bfl_model_limits)
        self._acquire = LuaScript(connection, "slots_prelude", "slots_acquire")
        self._dispatch = LuaScript(connection, "slots_prelude", "slots_dispatch")
        self._requeue = LuaScript(connection, "slots_prelude", "slots_requeue")

    def acquire(self, job: Job) -> bool:
        """Give the ``queued`` job a slot now (True), or put it in line for one (False)."""
        pool = self.pool_of(job)
        return bool(self._acquire(self._pool_keys(), [*self._pool_args(), pool, job.id, repr(job.created_at)]))

    def dispatch(self, limit: int = 100) -> list[str]:
        """Hand free slots to waiting jobs, the earliest in any line first; returns their ids."""
        given = self._dispatch(self._pool_keys(), [*self._pool_args(), limit])
        return [g.decode() if isinstance(g, bytes) else g for g in given]

    def requeue(self, job: Job, pause: float = 0.0, *, wait: float = 0.0) -> bool:
        """Give back the ``queued`` job's slot and put it back in line at its old place.

        ``pause`` seconds (BFL's Retry-After) hold the whole pool: BFL said it is full. ``wait`` seconds
        keep this job alone out of line instead, until the sweep puts it back (the budget said no to it).
        """
        pool = self.pool_of(job)
        return bool(self._requeue([*self._pool_keys(), self.keys.job(job.id)],
                                  [*self._pool_args(), pool, job.id, repr(job.created_at), int(pause * 1000),
                                   int(wait * 1000)]))

    def pool_of(self, job: Job) -> str:
        """The pool the job's task counts against (its recorded one, if BFL_MODEL_LIMITS still names it)."""
        return job.pool if job.pool in self.pools else pool_for(job.model, self.config.bfl_model_limits)

    def _pool_keys(self) -> list[str]:
        keys = [self.keys.due]
        for pool in self.pools:
            keys += [self.keys.slots(pool), self.keys.waiting(pool), self.keys.paused(pool)]
        return keys

    def _pool_args(self) -> list:
        args: list = [repr(time.time()), self.config.bfl_max_active, SLOT_LEASE, SUBMIT_LEASE, len(self.pools)]
        for pool in self.pools:
            args += [pool, pool_limit(self.config, pool)]
        return args

    def accepted(self, pool: str) -> None:
        """BFL accepted a task: the next refusal starts the backoff afresh."""
        self.connection.delete(self.keys.strikes(pool))

    def strike(self, pool: str) -> int:
        """Count one more refusal in a row from BFL for ``pool``; returns the count."""
        key = self.keys.strikes(pool)
        pipe = self.connection.pipeline()
        pipe.incr(key)
        pipe.expire(key, 3600)
        return int(pipe.execute()[0])

    def in_flight(self, pool: str) -> int:
        """How many slots of ``pool`` are held."""
        return int(self.connection.zcard(self.keys.slots(pool)))

    def holds(self, job: Job) -> bool:
        """Whether the job holds a BFL slot (a job waiting out of line, or in it, holds none)."""
        return self.connection.zscore(self.keys.slots(self.pool_of(job)), job.id) is not None

    def waiting(self, pool: str) -> int:
        """How many jobs wait in line for ``pool``."""
        return int(self.connection.zcard(self.keys.waiting(pool)))
