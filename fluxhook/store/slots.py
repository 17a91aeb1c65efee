"""BFL concurrency slots: at most ``BFL_MAX_ACTIVE`` tasks in flight, shared by every process and
handed to the apps whose jobs wait in turn, in proportion to their weights.

Each pool (see ``fluxhook.core.pools``) has a sorted set of slot holders scored by when they took the
slot, and one line of waiting jobs. Every task counts toward ``BFL_MAX_ACTIVE`` and toward its pool's
limit. Each job has an owner (``fluxhook.store.owners``: its app key, or the admin owner); a line's
members are ``<owner>:<job id>``, so an owner's jobs are one lexical range in creation order and the
owners with work waiting are found one lookup each, however long their lines.

Who goes next is start-time fair queueing over the owners (``lua/slots_prelude.lua``): an owner's
next turn starts at its pass, or at the clock (the start of the last turn given) if that is later;
the earliest start among the owners with a job that may take a slot now gets it, and its pass moves
on by 1 / its ``weight``. So a backlog of hundreds costs another owner's job at most one turn of
each other owner waiting, and an owner back from idle starts level with the others, with no credit
saved up. An owner at its own ``max_active`` is passed over without holding anyone up; within one
owner, its earliest job in any pool with room goes first, as a single FIFO would.

Taking and handing out slots are Lua scripts over all pools, so web and worker processes can
never over-commit; a job's change of status gives its slot or its place in line back
(``JobStore.transition``). A job that never finishes loses its slot after ``SLOT_LEASE`` seconds.
"""

from __future__ import annotations

import time
from typing import Callable

from redis import Redis

from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.pools import SLOT_LEASE, SUBMIT_LEASE, pool_for, pool_limit, pools
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import ADMIN_OWNER, DEFAULT_WEIGHT, owner_of
from fluxhook.store.scripts import LuaScript

# Most jobs of an old line moved into the new lines per sweep (see ``adopt_old_lines``).
ADOPT_BATCH = 500


class Slots:
    """The slot pools on one Redis connection."""

    def __init__(self, connection: Redis, config: Config, keys: Keys = KEYS, clock: Callable[[], float] = time.time):
        self.connection = connection
        # When a slot is taken, and its lease runs from (tests run it by hand).
        self.clock = clock
        self.config = config
        self.keys = keys
        self.pools = pools(config.bfl_model_limits)
        self._acquire = LuaScript(connection, "slot_time", "fair_turns", "slots_prelude", "slots_acquire")
        self._dispatch = LuaScript(connection, "slot_time", "fair_turns", "slots_prelude", "slots_dispatch")
        self._requeue = LuaScript(connection, "slot_time", "fair_turns", "slots_prelude", "slots_requeue")
        self._adopt = LuaScript(connection, "slots_adopt")

    def acquire(self, job: Job, key_id: str | None = None) -> bool:
        """Put the ``queued`` job of app key ``key_id`` (None: an admin token's) in line; True if its
        turn is now and it took a slot, False if it waits for ``dispatch`` to give it one."""
        pool = self.pool_of(job)
        return bool(self._acquire(self._pool_keys(), [*self._pool_args(), pool, job.id, owner_of(key_id)]))

    def dispatch(self, limit: int = 100) -> list[str]:
        """Hand free slots to waiting jobs, one owner's turn at a time; returns their ids."""
        given = self._dispatch(self._pool_keys(), [*self._pool_args(), limit])
        return [_text(g) for g in given]

    def requeue(self, job: Job, pause: float = 0.0, *, wait: float = 0.0) -> bool:
        """Give back the ``queued`` job's slot and put it back in its owner's line at its old place.

        ``pause`` seconds (BFL's Retry-After) hold the whole pool: BFL said it is full. ``wait`` seconds
        keep this job alone out of line instead, until the sweep puts it back (the budget said no to it).
        A slot given back is handed on at once (``wait_for_freed``), not at the next sweep.
        """
        pool = self.pool_of(job)
        return bool(self._requeue([*self._pool_keys(), self.keys.job(job.id), self.keys.slot_freed],
                                  [*self._pool_args(), pool, job.id, int(pause * 1000), int(wait * 1000)]))

    def set_share(self, key_id: str | None, weight: float | None, max_active: int | None, pipeline=None) -> None:
        """Record the ``weight`` (None: the default) and ``max_active`` (None: none) of app key ``key_id``'s
        jobs for the dispatch; on ``pipeline`` if given, so it goes with the key's own record."""
        owner, target = owner_of(key_id), pipeline if pipeline is not None else self.connection.pipeline()
        for key, value in ((self.keys.share_weights, weight), (self.keys.share_max_active, max_active)):
            if value is None:
                target.hdel(key, owner)
            else:
                target.hset(key, owner, value)
        if pipeline is None:
            target.execute()

    def drop_share(self, key_id: str, pipeline=None) -> None:
        """Forget app key ``key_id``'s weight and max_active (a revoked key: its jobs no longer wait)."""
        self.set_share(key_id, None, None, pipeline)

    def wait_for_freed(self, timeout: float) -> bool:
        """Block until a status change frees a slot (True), or ``timeout`` seconds pass (False); each freeing
        wakes one waiter. Call it on a connection whose socket timeout is longer than ``timeout``."""
        return self.connection.blpop([self.keys.slot_freed], timeout=timeout) is not None

    def pool_of(self, job: Job) -> str:
        """The pool the job's task counts against (its recorded one, if BFL_MODEL_LIMITS still names it)."""
        return job.pool if job.pool in self.pools else pool_for(job.model, self.config.bfl_model_limits)

    def adopt_old_lines(self) -> int:
        """Move up to ``ADOPT_BATCH`` jobs still queued in lines kept by releases before fair share
        into the lines, as the admin owner's; returns how many moved. One round trip when there are none."""
        pipe = self.connection.pipeline(transaction=False)
        for pool in self.pools:
            pipe.zrange(self.keys.legacy_line(pool), 0, ADOPT_BATCH - 1)
        moved = 0
        for pool, ids in zip(self.pools, pipe.execute(), strict=True):
            for job_id in map(_text, ids):
                keys = [self.keys.legacy_line(pool), self.keys.job(job_id), self.keys.line(pool), self.keys.fair_owners]
                moved += int(self._adopt(keys, [job_id, ADMIN_OWNER]))
        return moved

    def _pool_keys(self) -> list[str]:
        k = self.keys
        keys = [k.due, k.fair_owners, k.fair_held, k.fair_passes, k.fair_clock, k.share_weights, k.share_max_active,
                k.fair_charges, k.fair_estimates]
        for pool in self.pools:
            keys += [k.slots(pool), k.line(pool), k.paused(pool)]
        return keys

    def _pool_args(self) -> list:
        args: list = [repr(self.clock()), self.config.bfl_max_active, SLOT_LEASE, SUBMIT_LEASE, ADMIN_OWNER, DEFAULT_WEIGHT,
                      len(self.pools)]
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
        return int(self.connection.zcard(self.keys.line(pool)))

    def held_by(self, key_id: str | None) -> int:
        """How many slots the jobs of app key ``key_id`` (None: the admin tokens') hold."""
        return int(self.connection.hget(self.keys.fair_held, owner_of(key_id)) or 0)

    def waiting_of(self, key_id: str | None) -> list[str]:
        """The ids of the jobs of app key ``key_id`` (None: the admin tokens') in line, pool by pool,
        each pool's in creation order. Jobs waiting out of line (the budget refused them) are not here."""
        owner = owner_of(key_id)
        pipe = self.connection.pipeline(transaction=False)
        for pool in self.pools:
            pipe.zrangebylex(self.keys.line(pool), f"[{owner}:", f"({owner};")
        return [_text(m)[len(owner) + 1:] for members in pipe.execute() for m in members]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
