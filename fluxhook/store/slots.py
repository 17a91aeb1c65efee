"""BFL concurrency slots: per BFL account (``core.accounts``), at most its ``max_active`` tasks in flight and its
per-model limits, shared by every process and handed to the apps whose jobs wait in turn, in proportion to their
weights.

Each account has, per pool (see ``fluxhook.core.accounts``), a sorted set of slot holders scored by when they took the
slot; each pool has one line of waiting jobs, whatever account they may use. Each job has an owner
(``fluxhook.store.owners``: its app key, or the admin owner) and a route (the accounts it may use; none recorded: any);
a line's members are ``<owner>:<job id>``, so an owner's jobs are one lexical range in creation order and the owners
with work waiting are found one lookup each, however long their lines.

Who goes next is start-time fair queueing over the owners (``lua/slots_prelude.lua``), one turn order across every
account: an owner's next turn starts at its pass, or at the clock (the start of the last turn given) if that is
later; the earliest start among the owners with a job that may take a slot now gets it, and its pass moves on by its
slot time / its ``weight``. A job may take a slot of an account its route allows that is not cooling down
(``store.cooldowns``) and has room in its pool; it takes the least busy one's. So a backlog of hundreds costs another
owner's job at most one turn of each other owner waiting, and an owner back from idle starts level with the others,
with no credit saved up. An owner at its own ``max_active`` is passed over without holding anyone up; within one
owner, its earliest job that may go now goes first, as a single FIFO would.

Taking and handing out slots are Lua scripts over all accounts and pools, so web and worker processes can never
over-commit an account or send a job outside its route; a job's change of status gives its slot or its place in line
back (``JobStore.transition``), but a job ended on purpose while BFL runs its task on, which keeps it until BFL says
the task ended (``JobStore.let_go``, ``steps/running_on.py``). A job that never finishes loses its slot after
``SLOT_LEASE`` seconds.

What an owner holds queued is bounded: the step that makes a job refuses it when its owner's queued jobs, with
the room its batches being made hold, reach its ``max_queued`` (``lua/queue_room.lua``), and a batch holds room for all
its items before its first is made (``hold_queue_room``), so neither is ever made past the limit, over any number of
processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from redis import Redis

from fluxhook.core import job as st
from fluxhook.core.accounts import ANY_ROUTE, DEFAULT_ACCOUNT, Account, Cooling, pool_for, pools
from fluxhook.core.config import Config
from fluxhook.core.errors import QueueFull
from fluxhook.core.holds import QUEUE_ROOM_LEASE, SLOT_LEASE, STRIKES_TTL, SUBMIT_LEASE
from fluxhook.core.job import Job
from fluxhook.core.wait_reasons import LineState, Place
from fluxhook.store import cooldowns
from fluxhook.store.idempotency import key_taken
from fluxhook.store.jobs import Creation, Lock
from fluxhook.store.keys import KEYS, Keys, slot_script_keys
from fluxhook.store.owners import (
    ADMIN_OWNER,
    DEFAULT_WEIGHT,
    end_user_ranges,
    member,
    member_job,
    owner_of,
    owner_range,
)
from fluxhook.store.scripts import LuaScript, text
from fluxhook.store.wakes import push

# A queue_full refusal's Retry-After (s): room comes back as the owner's jobs go to BFL, one at each slot that frees,
# which for a key holding thousands takes minutes; sooner would mostly be refused again. Above the Python client's
# MAX_RETRY_AFTER (30 s), so the client hands the refusal to its caller (who decides) rather than sleeping through it.
QUEUE_FULL_RETRY = 60



@dataclass(frozen=True)
class AccountNow:
    """One account's slots at one moment."""

    account: Account
    # Per pool: its slots held, and when its pause ends (epoch seconds; only paused pools).
    held: dict[str, int]
    paused_until: dict[str, float]
    # Why and until when it cools down (``Cooling``), None when it takes tasks.
    cooling: Cooling | None


@dataclass(frozen=True)
class SlotsNow:
    """The slots as they stand at one moment, as the accounts view and a key's description show them."""

    accounts: list[AccountNow]
    # Per owner asked of: the slots its jobs hold, and its max_active (None: no limit of its own).
    owner_held: dict[str, int]
    owner_cap: dict[str, int | None]


@dataclass(frozen=True)
class OwnerJobs:
    """An owner's queued jobs that wait: how many in each pool's line, and the ids of those waiting aside."""

    in_line: dict[str, int]
    aside: list[str]


@dataclass(frozen=True)
class Joined:
    """A job's place in line as its creation took it: the account whose slot it took as it joined (None: it waits), and
    while it waits, what holds it back (read in the same step, so its creation need not look again)."""

    account: str | None
    line: LineState | None = None


@dataclass(frozen=True)
class Dispatched:
    """What one dispatch did: the jobs it handed a slot (in turn order), the account whose slot each took, whether
    jobs still wait in a pool's line, and whether a cooldown or a pause holds some of them back (``on_timer``): the
    clock alone may free those, with no wake-up pushed, so the dispatcher's next wait is short. Jobs held back only by
    full slots, an owner's max_active or a route go when a slot frees, which pushes one."""

    jobs: list[str]
    accounts: dict[str, str]
    waiting: bool
    on_timer: bool = False


@dataclass(frozen=True)
class EndedHolder:
    """A job that holds a slot though it has ended: canceled while BFL runs its task on (``steps/running_on.py``);
    the account whose slot it holds, and the owner it counts for."""

    job_id: str
    account: str
    owner: str


@dataclass(frozen=True)
class KnownCap:
    """An owner's ``max_active`` as its caller read it (None: no limit of its own), and its ``weight`` when the caller
    read that too (None: not read): ``Slots.join`` asks Redis for neither."""

    max_active: int | None
    weight: float | None = None


class Slots:
    """The BFL accounts' slot pools on one Redis connection."""

    def __init__(self, connection: Redis, config: Config, keys: Keys = KEYS, clock: Callable[[], float] = time.time):
        self.connection = connection
        # When a slot is taken, and its lease runs from (tests run it by hand).
        self.clock = clock
        self.config = config
        self.keys = keys
        self.accounts = config.accounts
        self.pools = pools(config.pooled_limits)
        self._acquire = LuaScript(connection, "slots_acquire")
        self._dispatch = LuaScript(connection, "slots_dispatch")
        self._requeue = LuaScript(connection, "slots_requeue")
        self._line_states = LuaScript(connection, "slots_line_states")
        self._routes = LuaScript(connection, "slots_routes")
        self._queue = LuaScript(connection, "slots_queue")
        self._strike = LuaScript(connection, "slot_strike")

    def acquire(self, job: Job, *, send_here: bool = True, creation: Creation | None = None) -> str | None:
        """``join``'s account: the name of the account whose slot the job took, None while it waits."""
        return self.join(job, send_here=send_here, creation=creation).account

    def join(self, job: Job, *, send_here: bool = True, creation: Creation | None = None,
             known_cap: KnownCap | None = None, queue_limit: int | None = None) -> Joined:
        """Put the ``queued`` job in its owner's line (its app key's, ``job.key_id``; the admin owner's without one),
        to go through an account its ``route`` allows; if its turn is now it takes a slot (``Joined.account``: what
        ``account_of`` then reads), else it waits for ``dispatch`` (``Joined.line``: what holds it back, as
        ``line_states`` reads it). ``send_here=False`` (the caller will not send it itself): it only waits, and a
        worker's sender is woken, so no slot is held by a job that nobody is sending. With ``creation``
        (``JobStore.creation``), the job is made in the same step: never recorded without its place, which nothing
        else would give it. A job made before must be recorded with the same ``key_id``: its later steps find its
        place in line by its record's. ``known_cap``: its owner's share as the caller read it (``KnownCap``).

        A job made here (``creation``) is made only if its owner has room under ``queue_limit`` (its key's
        ``max_queued`` as the caller read it; None: read here, ``queue_limit_of``), checked in the same step:
        ``QueueFull``, and nothing made, when it has none. A batch's item takes the room its batch holds."""
        limit = self._limit(job, creation, queue_limit)
        answer = self._acquire(*self._joining(job, send_here, creation, known_cap, limit))
        return self._joined(job, answer)

    def _joined(self, job: Job, answer: list) -> Joined:
        account, line, *refused = answer
        if refused and refused[0]:
            raise queue_full(owner_of(job.key_id), 1, refused[0])
        if refused[1:]:
            raise key_taken()
        return Joined(None if account is None else text(account), None if line is None else line_state(line))

    def join_all(self, made: Sequence[tuple[Job, Creation]], known_cap: KnownCap | None = None,
                 queue_limit: int | None = None) -> None:
        """``join`` each job with its ``creation``, none of them sent by the caller (``send_here=False``): in one
        round trip, each in a step of its own, so a job made is in line whatever stops the caller after it. A batch's
        items take the room it holds (``hold_queue_room``); ``QueueFull`` if one found none (its hold lapsed and its
        owner's queue is full): the items before it are made, it and those after it are not."""
        if not made:
            return
        limit = self._limit(made[0][0], made[0][1], queue_limit)
        pipe = self.connection.pipeline(transaction=False)
        for job, creation in made:
            self._acquire(*self._joining(job, False, creation, known_cap, limit), client=pipe)
        for (job, _), answer in zip(made, pipe.execute(), strict=True):
            self._joined(job, answer)

    def _limit(self, job: Job, creation: Creation | None, queue_limit: int | None) -> int:
        """The limit a job made with ``creation`` is held to (none is read for a job made before)."""
        if queue_limit is not None or creation is None:
            return queue_limit or 0
        return self.queue_limit_of(job.key_id)

    def _joining(self, job: Job, send_here: bool, creation: Creation | None, known_cap: KnownCap | None,
                 queue_limit: int) -> tuple[list[str], list[Any]]:
        """``slots_acquire.lua``'s keys and arguments for ``job``."""
        made = creation or Creation([], [])
        return ([*self._pool_keys(), *made.keys],
                [*self._pool_args(), self.pool_of(job), job.id, owner_of(job.key_id), job.route or ANY_ROUTE,
                 "1" if send_here else "0", _cap_word(known_cap), line_member(job), queue_limit,
                 job.batch_id or "", QUEUE_ROOM_LEASE, *made.args])

    def queue_limit_of(self, key_id: str | None) -> int:
        """The most queued jobs and batch items app key ``key_id`` (None: the admin tokens, together) may hold: its
        record's ``max_queued``, else ``MAX_QUEUED_PER_KEY``. One read (none for the admin tokens)."""
        own = self.connection.hget(self.keys.app_key(key_id), "max_queued") if key_id else None
        return int(own) if own else self.config.max_queued_per_key

    def hold_queue_room(self, key_id: str | None, batch_id: str, items: int, limit: int) -> None:
        """Hold room for batch ``batch_id``'s ``items`` in its key's queue under ``limit``, which its items take as
        they are made (``join_all``); until none is made for ``QUEUE_ROOM_LEASE`` s. ``QueueFull`` and nothing held
        when the key's queued jobs and the room its other batches hold leave too little."""
        full = self._queue(self._pool_keys(), [*self._pool_args(), owner_of(key_id), items, limit, batch_id,
                                               QUEUE_ROOM_LEASE])
        if full:
            raise queue_full(owner_of(key_id), items, full, batch=True)

    def give_back_queue_room(self, key_id: str | None, batch_id: str) -> None:
        """The room batch ``batch_id`` holds in its key's queue (``hold_queue_room``) comes back now, not when its
        hold lapses: the batch was refused before any item was made."""
        self._queue(self._pool_keys(), [*self._pool_args(), owner_of(key_id), 0, 0, batch_id, 0, "give_back"])

    def check_queue_room(self, key_id: str | None, limit: int) -> None:
        """``QueueFull`` when app key ``key_id`` (None: the admin tokens) has no room for one more queued job under
        ``limit``; nothing held either way."""
        full = self._queue(self._pool_keys(), [*self._pool_args(), owner_of(key_id), 1, limit, "", 0])
        if full:
            raise queue_full(owner_of(key_id), 1, full)

    def dispatch(self, limit: int = 100, *, free_lapsed: bool = True,
                 senders: Mapping[str, int] | None = None) -> Dispatched:
        """Hand free slots to waiting jobs, one owner's turn at a time (what it did: ``Dispatched``); one round trip.
        ``free_lapsed=False`` leaves the slots held past their lease for a later dispatch to free (the dispatcher frees
        them every few seconds, not at each dispatch). ``senders``: at most that many jobs of each account (one not
        named: none), the caller's senders free for it."""
        rooms = [] if senders is None else [senders.get(account.name, 0) for account in self.accounts]
        jobs, accounts, waiting, on_timer = self._dispatch(
            self._pool_keys(), [*self._pool_args(), limit, "1" if free_lapsed else "0", *rooms])
        names = [text(job) for job in jobs]
        return Dispatched(names, dict(zip(names, map(text, accounts), strict=True)), bool(waiting), bool(on_timer))

    def requeue(self, job: Job, pause: float = 0.0, *, wait: float = 0.0, unlock: Lock | None = None) -> bool:
        """Give back the ``queued`` job's slot, handed on right away (``Keys.slot_freed`` wakes a dispatcher), and put
        the job back in its owner's line at its old place. ``pause`` seconds (BFL's Retry-After: BFL said the pool is
        full) hold the pool at the account whose slot it held; ``wait`` seconds keep this job alone out of line instead,
        until the sweep puts it back (the budget said no to it). ``unlock``: the submit lock of the submission giving the
        slot back, freed in the same step (if still its own)."""
        pool = self.pool_of(job)
        keys = [*self._pool_keys(), self.keys.job(job.id)]
        args = [*self._pool_args(), pool, job.id, int(pause * 1000), int(wait * 1000)]
        if unlock is not None:
            keys.append(unlock.key)
            args.append(unlock.value)
        return bool(self._requeue(keys, args))

    def account_of(self, job_id: str) -> str | None:
        """The account whose slot the job holds (None: it holds none)."""
        holder = self.connection.hget(self.keys.slot_holders, job_id)
        return None if holder is None else text(holder).partition("|")[0]

    def set_share(self, key_id: str | None, weight: float | None, max_active: int | None, pipeline=None) -> None:
        """Record the ``weight`` (None: the default) and ``max_active`` (None: none) of app key ``key_id``'s
        jobs for the dispatch; on ``pipeline`` if given, so it goes with the key's own record. A dispatcher is woken:
        a higher max_active lets the key's waiting jobs go now, and no slot that frees would say so."""
        owner, target = owner_of(key_id), pipeline if pipeline is not None else self.connection.pipeline()
        for key, value in ((self.keys.share_weights, weight), (self.keys.share_max_active, max_active)):
            if value is None:
                target.hdel(key, owner)
            else:
                target.hset(key, owner, value)
        push(target, self.keys.slot_freed)
        if pipeline is None:
            target.execute()

    def drop_share(self, key_id: str, pipeline=None) -> None:
        """Forget app key ``key_id``'s weight and max_active (a revoked key: its jobs no longer wait)."""
        self.set_share(key_id, None, None, pipeline)

    def pool_of(self, job: Job) -> str:
        """The pool the job's task counts against (its recorded one, if the accounts' model limits still name it)."""
        return job.pool if job.pool in self.pools else pool_for(job.model, self.config.pooled_limits)

    def line_keys(self) -> tuple[str, ...]:
        """Every pool's line: what a dispatcher at rest watches (``store.wakes.Watched``)."""
        return tuple(self.keys.line(pool) for pool in self.pools)

    def _pool_keys(self) -> list[str]:
        return slot_script_keys(self.keys, self.pools, self.accounts)

    def _pool_args(self, now: float | None = None) -> list:
        args: list = [repr(self.clock() if now is None else now), SLOT_LEASE, SUBMIT_LEASE, ADMIN_OWNER, DEFAULT_WEIGHT,
                      len(self.pools), *self.pools, len(self.accounts)]
        for account in self.accounts:
            args += [account.name, account.region or "", account.max_active, *map(account.pool_limit, self.pools)]
        return args

    def strike(self, pool: str, account: str = DEFAULT_ACCOUNT) -> int:
        """Count one more refusal in a row from the account's BFL for ``pool`` (``cooldowns.ACCOUNT_WIDE``: any),
        unless the pool's pause there already runs (``lua/slot_strike.lua``); the count, kept for an hour."""
        return int(self._strike([self.keys.strikes(pool, account), self.keys.paused(pool, account)], [STRIKES_TTL]))

    def holds(self, job: Job) -> bool:
        """Whether the job holds a BFL slot (a job waiting out of line, or in it, holds none)."""
        account = self.account_of(job.id)
        return account is not None and self.connection.zscore(self.keys.slots(self.pool_of(job), account), job.id) is not None

    def waiting(self, pool: str) -> int:
        return int(self.connection.zcard(self.keys.line(pool)))

    def look(self, jobs: Sequence[Job]) -> tuple[list[Place], list[LineState]]:
        """Where each of ``jobs`` (queued ones) stands: holding a slot, in its owner's line, or aside (out of line);
        and what decides whether it could take a slot now, were it in line. One round trip."""
        owners = [owner_of(job.key_id) for job in jobs]
        asks = [(self.pool_of(job), owner, job.route or ANY_ROUTE) for job, owner in zip(jobs, owners, strict=True)]
        distinct = list(dict.fromkeys(asks))  # jobs alike wait alike: each asked once
        each_job = [x for job in jobs for x in (job.id, self.pool_of(job), line_member(job))]
        states, places = self._ask_lines(distinct, each_job)
        lines = dict(zip(distinct, map(line_state, states), strict=True))
        return [Place(text(place)) for place in places], [lines[ask] for ask in asks]

    def accounts_for(self, routes: Sequence[str | None]) -> dict[str | None, list[str]]:
        """The names of the accounts each of ``routes`` allows (None: any), in their order: read as the dispatch reads
        a route (``lua/routes.lua``). One round trip."""
        asked = list(dict.fromkeys(routes))
        if not asked:
            return {}
        answers = self._routes(self._pool_keys(), [*self._pool_args(time.time()), *(r or ANY_ROUTE for r in asked)])
        return {route: [text(name) for name in names] for route, names in zip(asked, answers, strict=True)}

    def line_states(self, asks: Sequence[tuple[str, str, str | None]]) -> list[LineState]:
        """For each (pool, owner, route), what decides whether that owner's job of that route in the pool's line
        could take a slot now (``lua/slots_line_states.lua``: the dispatch's own reading of the slots)."""
        states, _ = self._ask_lines(asks, [])
        return [line_state(state) for state in states]

    def _ask_lines(self, asks: Sequence[tuple[str, str, str | None]], each_job: list[str]) -> tuple[list, list]:
        args = [x for pool, owner, route in asks for x in (pool, owner, route or ANY_ROUTE)]
        return self._line_states(self._pool_keys(), [*self._pool_args(time.time()), len(asks), *args, *each_job])

    def owners_now(self, owners: Sequence[str]) -> tuple[SlotsNow, dict[str, OwnerJobs]]:
        """The slots now, for ``owners``, and each one's queued jobs that wait: how many in each pool's line, and
        the ids of those aside. One round trip, whatever the number of jobs in line."""
        owners = list(owners)
        pipe = self.connection.pipeline(transaction=False)
        self._ask_now(pipe, owners)
        for owner in owners:
            for pool in self.pools:
                pipe.zlexcount(self.keys.line(pool), *owner_range(owner))
            pipe.zrangebylex(self.keys.aside, *owner_range(owner))
        answers = pipe.execute()
        count = len(self.accounts) * (1 + 2 * len(self.pools)) + 2 * len(owners)
        rest = iter(answers[count:])
        jobs = {}
        for owner in owners:
            in_line = {pool: int(next(rest)) for pool in self.pools}
            jobs[owner] = OwnerJobs(in_line, [member_job(text(m)) for m in next(rest)])
        return self._read_now(answers[:count], owners), jobs

    def wake_aside(self, owner: str | None, now: float) -> int:
        """Bring ``owner``'s jobs waiting aside (None: every owner's) due at ``now``, and wake a sweeper: a limit that
        held them was raised, and each sleeps until its reason ends (``budget.recheck_in``), not looked at meanwhile.
        Never later than they were due, and only those still due (one that left the index since stays out). How many
        were brought due; two round trips, whatever their number."""
        found = (self.connection.zrangebylex(self.keys.aside, *owner_range(owner)) if owner is not None
                 else self.connection.zrange(self.keys.aside, 0, -1))
        jobs = {member_job(text(item)): now for item in found}
        if jobs:
            pipe = self.connection.pipeline(transaction=False)
            pipe.zadd(self.keys.due, jobs, xx=True, lt=True)
            push(pipe, self.keys.sweep_added)
            pipe.execute()
        return len(jobs)

    def end_user_waiting(self, key_id: str | None, end_user: str) -> list[str]:
        """The ids of app key ``key_id``'s queued jobs of ``end_user`` that wait in a pool's line or aside (not those
        holding a slot: their senders look at them). One round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for line in (*self.line_keys(), self.keys.aside):
            for bounds in end_user_ranges(owner_of(key_id), end_user):
                pipe.zrangebylex(line, *bounds)
        return list(dict.fromkeys(member_job(text(m)) for found in pipe.execute() for m in found))

    def accounts_now(self) -> list[AccountNow]:
        """Every account's slots, pauses and cooldown now: one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        self._ask_now(pipe, [])
        return self._read_now(pipe.execute(), []).accounts

    def queued_by_route(self, batch: int = 1000) -> dict[str, int]:
        """How many jobs wait in the lines, by route (``ANY_ROUTE`` for those without one): what tells how many
        could go through each account (``accounts_for``). One round trip while no queued job has a route of its own;
        else the lines' members and their routes, ``batch`` at a time (an operator's view, not a hot path)."""
        pipe = self.connection.pipeline(transaction=False)
        for pool in self.pools:
            pipe.zcard(self.keys.line(pool))
        pipe.hlen(self.keys.routes)
        *sizes, routed = pipe.execute()
        total = sum(int(n) for n in sizes)
        if not total or not int(routed):
            return {ANY_ROUTE: total} if total else {}
        counts: dict[str, int] = {}
        for pool in self.pools:
            for start in range(0, int(self.connection.zcard(self.keys.line(pool))), batch):
                members = self.connection.zrange(self.keys.line(pool), start, start + batch - 1)
                ids = [member_job(text(m)) for m in members]
                for route in (self.connection.hmget(self.keys.routes, ids) if ids else []):
                    name = ANY_ROUTE if route is None else text(route)
                    counts[name] = counts.get(name, 0) + 1
        return counts

    def _ask_now(self, pipe, owners: Sequence[str]) -> None:
        """Queue on ``pipe`` the reads ``_read_now`` makes a ``SlotsNow`` of."""
        for account in self.accounts:
            pipe.hmget(self.keys.cooling(account.name), "until", "reason", "lasting")
            for pool in self.pools:
                pipe.zcard(self.keys.slots(pool, account.name))
                pipe.pttl(self.keys.paused(pool, account.name))
        for owner in owners:
            pipe.hget(self.keys.fair_held, owner)
            pipe.hget(self.keys.share_max_active, owner)

    def _read_now(self, answers: list, owners: Sequence[str]) -> SlotsNow:
        now = time.time()
        per_account = 1 + 2 * len(self.pools)
        found = []
        for i, account in enumerate(self.accounts):
            cooled, pooled = answers[i * per_account], answers[i * per_account + 1:(i + 1) * per_account]
            found.append(AccountNow(
                account=account,
                held={pool: int(n) for pool, n in zip(self.pools, pooled[0::2], strict=True)},
                paused_until={pool: now + ms / 1000 for pool, ms in zip(self.pools, pooled[1::2], strict=True) if ms > 0},
                cooling=cooldowns.current(cooled, now)))
        owned = answers[len(self.accounts) * per_account:]
        return SlotsNow(
            accounts=found,
            owner_held={owner: int(n or 0) for owner, n in zip(owners, owned[0::2], strict=True)},
            owner_cap={owner: None if cap is None else int(cap) for owner, cap in zip(owners, owned[1::2], strict=True)})

    def holders_by_account(self) -> dict[str, list[str]]:
        """The jobs holding each account's slots (every pool's), by account name, in ``BFL_ACCOUNTS``' order: one
        round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for account in self.accounts:
            for pool in self.pools:
                pipe.zrange(self.keys.slots(pool, account.name), 0, -1)
        held = iter(pipe.execute())
        return {account.name: [text(m) for _ in self.pools for m in next(held)] for account in self.accounts}

    def ended_holders(self) -> list[EndedHolder]:
        """The jobs holding slots that have ended (canceled, their tasks still running at BFL): counted in their
        accounts' tasks in flight and their owners' slots held like any other holder. Two round trips, whose size is
        the slots held (an operator's view, not a hot path)."""
        entries = {text(job): text(entry) for job, entry in self.connection.hgetall(self.keys.slot_holders).items()}
        pipe = self.connection.pipeline(transaction=False)
        for job_id in entries:
            pipe.hget(self.keys.job(job_id), "status")
        found = []
        for (job_id, entry), status in zip(entries.items(), pipe.execute(), strict=True):
            if status is not None and text(status) in st.TERMINAL:
                account, _, rest = entry.partition("|")  # lua/slot_holders.lua: '<account>|<owner>|...'
                found.append(EndedHolder(job_id, account, rest.partition("|")[0]))
        return found


def queue_full(owner: str, items: int, full: Sequence, *, batch: bool = False) -> QueueFull:
    """The refusal of ``items`` more for ``owner`` (a ``batch``'s, or one job's), from what ``lua/queue_room.lua``
    found: its jobs queued, the room its batches being made hold, its limit; naming them and what to do."""
    queued, held, limit = (int(n) for n in full)
    holds = queued + held
    admin = owner == ADMIN_OWNER
    who, its = ("the admin tokens (one key, together) hold", "their") if admin else ("this app key holds", "its")
    named = "MAX_QUEUED_PER_KEY" if admin else "max_queued"
    also = f" ({held:,} of them for batches being made)" if held else ""
    raise_it = "raise MAX_QUEUED_PER_KEY" if admin else "ask an admin to raise the key's max_queued (PATCH /v1/keys/{id})"
    if not batch:
        message = (f"{who} {holds:,} jobs and batch items queued for BFL{also}, {its} limit of {limit:,} ({named}): "
                   f"nothing was created; send it again once some of them have gone to BFL (Retry-After), or "
                   f"{raise_it}")
    else:
        room = max(0, limit - holds)
        smaller = f", send at most {room:,} items" if room else ""
        plural = "s" if items != 1 else ""
        message = (f"this batch's {items:,} item{plural} would pass the limit of {limit:,} jobs and batch items queued "
                   f"for BFL ({named}): {who} {holds:,}{also}, room for {room:,}; nothing was created; send it again "
                   f"once enough of them have gone to BFL (Retry-After){smaller}, or {raise_it}")
    return QueueFull(message, queued=holds, limit=limit, retry_after=QUEUE_FULL_RETRY)


def line_member(job: Job) -> str:
    """The job's member in its pool's line: its owner's, a batch item's bulk form, its end user's, ranked by its
    deadline."""
    return member(owner_of(job.key_id), job.id, bulk=job.batch_id is not None, deadline=job.deadline,
                  end_user=job.end_user)


def _cap_word(known: KnownCap | None) -> str:
    """``slots_acquire.lua``'s word for an owner's limit its caller read: '?' not read, '' none, else the limit; then
    '|' and its weight when the caller read that too."""
    if known is None:
        return "?"
    cap = "" if known.max_active is None else str(known.max_active)
    return cap if known.weight is None else f"{cap}|{known.weight!r}"


def line_state(state: list) -> LineState:
    """What holds a job in line back, as ``lua/slots_waits.lua`` lists it."""
    owner_held, cap, pool_held, pool_limit, total_limit, paused, cooling = state[:7]
    # A timeline entry an older release wrote has no storage's part: it waited for none.
    storage, storage_until = [*(text(x) for x in state[7:]), "", ""][:2]
    return LineState(owner_held=int(owner_held), owner_cap=int(cap) if cap else None, pool_held=int(pool_held),
                     pool_limit=int(pool_limit), total_limit=int(total_limit),
                     paused_until=float(paused) if paused else None, cooling_until=float(cooling) if cooling else None,
                     storage=storage or None, storage_until=float(storage_until) if storage_until else None)

