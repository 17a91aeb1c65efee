"""Usage counters, the daily credit budget's reservations, and the account's balance, in Redis.

Counters are hashes of whole numbers, one per UTC day (``Keys.usage``) and one per UTC hour
(``Keys.hourly``); they grow with the jobs' transitions (``CountUsage`` effects in the transition's step,
``CountHourly`` ones tallied by the process and written every few seconds: ``effects.Tallies``),
never by scanning records, so reading a year of them costs one round trip whatever the number of
jobs. What the fields mean is ``fluxhook.credits.accounting``'s business; this class only keeps them.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple, Sequence

from redis import Redis

from fluxhook.core.accounts import Account
from fluxhook.core.holds import NEXT_LEASE, WAITING_LEASE
from fluxhook.store.effects import Tallies
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import ADMIN_OWNER, DEFAULT_WEIGHT
from fluxhook.store.scripts import LuaScript, text

# Whose limit a ``Limit`` is: BFL_DAILY_CREDIT_LIMIT, an app key's daily_credits, BFL_<NAME>_DAILY_CREDIT_LIMIT.
SERVICE_LIMIT, KEY_LIMIT, BFL_ACCOUNT_LIMIT, END_USER_LIMIT = "service", "key", "bfl_account", "end_user"


class ReserveMode(str, Enum):
    """What a reservation's look does (``lua/budget_reserve.lua``'s ARGV[5])."""

    RESERVE = "0"  # decide, and reserve or record a wait
    DRY_RUN = "1"  # only say what would be decided (the operator's view)
    LOOK = "2"  # record a wait as RESERVE would, but reserve nothing when it would admit


class Limit(NamedTuple):
    """One credit limit a submission must stay within: where its day's spend and its reservations are."""

    spend_key: str  # a hash of the day's counters
    spend_field: str
    held_key: str  # job id -> '<deadline ms> <micro-credits>'
    limit: int  # micro-credits
    kind: str = SERVICE_LIMIT  # whose limit it is: the service's, an app key's or a BFL account's


class Reservation(NamedTuple):
    """The budget's answer to one submission, in micro-credits."""

    admitted: bool
    # The day's spend, and what other submissions under way hold reserved, in the limit that decided
    # (the first when admitted).
    spent: int
    reserved: int
    # What this submission holds reserved in the first limit (0 unless admitted).
    amount: int
    # Not admitted though credits remain: it must go alone and others' reservations are live, or an
    # older job waits to go alone.
    waits: bool = False
    # Which of the limits asked decided a refusal or a wait (0-based), and whose it is (``Limit.kind``).
    limit_index: int = 0
    decided_by: str = ""
    # Waiting, it waits for its turn to go alone; else (a boundable job) for one send alone to settle at most.
    alone: bool = False


class Balance(NamedTuple):
    """The account's credits as BFL last said, and when it said so (epoch seconds)."""

    credits: float
    at: float


class UsageStore:
    """Usage counters, budget reservations and the balance on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS, tallies: Tallies | None = None):
        self.connection = connection
        self.keys = keys
        # The process's hourly counts not yet written (the store's): written before the hours are read.
        self.tallies = tallies
        self._reserve = LuaScript(connection, "budget_reserve")
        self._admit_end_user = LuaScript(connection, "end_user_admit")
        self._read = LuaScript(connection, "counters_read")
        self._set_balance = LuaScript(connection, "balance_set")

    def limits_changed(self, limits: str) -> bool:
        """Record ``limits`` (the daily credit limits a starting process was given, as one text) as the service's;
        whether they differ from those the last process started with (none recorded: they do). One command."""
        previous = self.connection.set(self.keys.budget_limits, limits, get=True)
        return previous is None or text(previous) != limits

    def account_limit(self, day: str, spent_field: str, limit: int) -> Limit:
        """The account's daily limit on ``day``, as ``reserve`` takes it."""
        return Limit(self.keys.usage(day), spent_field, self.keys.budget_held, limit)

    def key_limit(self, day: str, spent_field: str, key_id: str, limit: int) -> Limit:
        """App key ``key_id``'s daily_credits on ``day`` (its spend in ``spent_field`` of the day's counters)."""
        return Limit(self.keys.usage(day), spent_field, self.keys.key_budget_held(key_id), limit, KEY_LIMIT)

    def end_user_limit(self, day: str, key_id: str, end_user: str, limit: int) -> Limit:
        """An end user's daily_credits with app key ``key_id`` on ``day`` (its spend is its ``credits`` counter of the
        day, ``store/end_users.py``)."""
        return Limit(self.keys.end_user_day(key_id, day), f"{end_user}:credits",
                     self.keys.end_user_budget_held(key_id, end_user), limit, END_USER_LIMIT)

    def bfl_account_limit(self, day: str, spent_field: str, account: str, limit: int) -> Limit:
        """BFL account ``account``'s own daily limit on ``day`` (its charges in ``spent_field``)."""
        return Limit(self.keys.usage(day), spent_field, self.keys.bfl_account_budget_held(account), limit,
                     BFL_ACCOUNT_LIMIT)

    def reserve(self, job_id: str, limits: Sequence[Limit], bound: int | None, *, now: float,
                lease: float, owner: str = ADMIN_OWNER, mode: ReserveMode = ReserveMode.RESERVE,
                waiting_lease: float = WAITING_LEASE) -> Reservation:
        """Admit the job's submission within every one of ``limits`` at once, reserving its ``bound`` (the most it can
        cost; None if unknown) in each, or everything left there when it must go alone (see ``lua/budget_reserve.lua``).
        One that must go alone and waits is recorded as waiting to go alone for ``waiting_lease`` seconds: the jobs that
        go alone take turns between owners (``owner``: the job's, ``owners.owner_of``), each holding back only its own
        owner's later jobs, and the next to go holding other owners' boundable jobs only once its gate has closed.
        ``mode``: ``ReserveMode`` (a job waiting aside looks: it reserves when it is sent, and a reservation it holds, a
        send of it under way, is untouched)."""
        keys = [key for limit in limits for key in (limit.spend_key, limit.held_key,
                                                    self.keys.budget_turns(limit.held_key))]
        keys.append(self.keys.share_weights)
        args: list = [job_id, int(now * 1000), int(lease * 1000), -1 if bound is None else bound,
                      mode.value,
                      int(waiting_lease * 1000), int(NEXT_LEASE * 1000), owner, ADMIN_OWNER, DEFAULT_WEIGHT]
        for limit in limits:
            args += [limit.limit, limit.spend_field]
        state, index, spent, reserved, amount, alone = (int(v) for v in self._reserve(keys, args))
        decided = limits[index - 1].kind if state != 1 and index >= 1 else ""
        return Reservation(state == 1, spent, reserved, amount, waits=state == 2, limit_index=max(0, index - 1),
                           decided_by=decided, alone=alone == 1)

    def admit_end_user(self, job_id: str, limit: Limit, bound: int | None, *, key_id: str, end_user: str,
                       now: float, lease: float) -> Reservation:
        """Admit a new job of ``end_user`` (of app key ``key_id``) within its daily credits ``limit`` (``end_user_limit``)
        while the day's spend and what its jobs admitted and not yet settled may cost stay below it, holding ``bound``
        (the most the job may cost; None if unknown) for ``lease`` seconds or until it settles (``ReleaseBudget``), in
        one step (``lua/end_user_admit.lua``). Refused, ``reserved`` is what the others not yet settled may cost."""
        admitted, spent, others = (int(v) for v in self._admit_end_user(
            [limit.spend_key, limit.held_key, self.keys.end_user_admitted(key_id, end_user)],
            [job_id, int(now * 1000), int(lease * 1000), bound or 0, limit.limit, limit.spend_field]))
        return Reservation(admitted == 1, spent, others, 0, decided_by="" if admitted else limit.kind)

    def drop_end_user_hold(self, job_id: str, *, key_id: str, end_user: str) -> None:
        """The job ``admit_end_user`` admitted is not made after all: its hold goes."""
        self.connection.hdel(self.keys.end_user_admitted(key_id, end_user), job_id)

    def held(self, job_id: str) -> int:
        """Micro-credits the job's own reservation holds in the service's limit (0 if none)."""
        read = _reservation(self.connection.hget(self.keys.budget_held, job_id))
        return read[1] if read else 0

    def reserved(self, now: float) -> int:
        """Micro-credits held by live reservations now."""
        return sum(amount for deadline, amount in filter(None, map(_reservation, self.connection.hvals(
            self.keys.budget_held))) if deadline > now * 1000)

    def counter(self, day: str, field: str) -> int:
        """One counter of UTC day ``day`` (0 when never counted)."""
        return int(self.connection.hget(self.keys.usage(day), field) or 0)

    def days(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """The counters of each UTC day in ``days`` (``YYYY-MM-DD``), in one round trip."""
        return self._hashes([self.keys.usage(day) for day in days], days)

    def hours(self, hours: Sequence[str]) -> dict[str, dict[str, int]]:
        """The outcome counters of each UTC hour in ``hours`` (``YYYY-MM-DDTHH``), in one round trip (two, when this
        process has counts not yet written: ``effects.Tallies``)."""
        if self.tallies is not None:
            self.tallies.flush()
        return self._hashes([self.keys.hourly(hour) for hour in hours], hours)

    def _hashes(self, keys: list[str], names: Sequence[str]) -> dict[str, dict[str, int]]:
        # A year is thousands of fields: decoded in bulk (int() reads the bytes as they came).
        return {name: dict(zip([text(f) for f in pairs[0::2]], map(int, pairs[1::2]), strict=False))
                for name, pairs in zip(names, self._read(keys), strict=False)}

    def set_balance(self, credits: float, at: float, ttl: int, *, account: Account) -> bool:
        """Keep the account's balance as its BFL (``Account.bfl_digest``) said it at ``at``, unless a later reading of
        that BFL is kept (False then); forgotten after ``ttl`` s without a refresh."""
        return bool(self._set_balance([self.keys.bfl_balance(account.name)],
                                      [repr(float(credits)), repr(float(at)), ttl, account.bfl_digest]))

    def balances(self, accounts: Sequence[Account]) -> list[Balance | None]:
        """Each of ``accounts``' balance last kept, or None if no worker asked BFL lately, or the one kept was read
        from another BFL (the account's endpoint or key changed since); in one round trip (none for no account). Each
        account's its own: no default, so that no reader takes one account's figure for another's."""
        pipe = self.connection.pipeline(transaction=False)
        for account in accounts:
            pipe.hmget(self.keys.bfl_balance(account.name), *READING)
        return [_reading(read, account) for read, account in zip(pipe.execute(), accounts, strict=True)]

    def ended(self) -> dict[str, float]:
        """Account name -> when a job it ran at BFL last ended (``AccountJobEnded``), in one command."""
        return {text(name): float(at) for name, at in self.connection.hgetall(self.keys.balance_ended).items()}


READING = ("credits", "at", "bfl")


def _reading(fields, account: Account) -> Balance | None:
    """A balance from its hash's ``READING`` fields: None when there is none, or it is another BFL's."""
    credits, at, bfl = fields
    if credits is None or at is None or bfl is None or text(bfl) != account.bfl_digest:
        return None
    return Balance(float(credits), float(at))


def _reservation(value) -> tuple[int, int] | None:
    """A reservation's deadline (ms) and micro-credits, from '<deadline> <amount>[ alone| waits ...]'; None if none."""
    deadline, amount = (text(value or b"").split(" ") + [""])[:2]
    if deadline.isascii() and deadline.isdigit() and amount.isascii() and amount.isdigit():
        return int(deadline), int(amount)
    return None

