"""Usage counters, the daily credit budget's reservations, and the account's balance, in Redis.

Counters are hashes of whole numbers, one per UTC day (``Keys.usage``) and one per UTC hour
(``Keys.hourly``); they grow with the jobs' transitions (``CountUsage``, ``CountHourly`` effects),
never by scanning records, so reading a year of them costs one round trip whatever the number of
jobs. What the fields mean is ``fluxhook.credits.usage``'s business; this class only keeps them.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from redis import Redis

from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript


class Reservation(NamedTuple):
    """The budget's answer to one submission, in micro-credits."""

    admitted: bool
    # The day's spend, and what other submissions under way hold reserved, when it was asked.
    spent: int
    reserved: int
    # What this submission holds reserved (0 if refused).
    amount: int


class Balance(NamedTuple):
    """The account's credits as BFL last said, and when it said so (epoch seconds)."""

    credits: float
    at: float


class UsageStore:
    """Usage counters, budget reservations and the balance on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._reserve = LuaScript(connection, "budget_reserve")
        self._read = LuaScript(connection, "counters_read")

    def reserve(self, job_id: str, *, day: str, previous_day: str, limit: int, estimate: int, spent_field: str,
                credits_field: str, jobs_field: str, now: float, lease: float, dry_run: bool = False) -> Reservation:
        """Admit the job's submission while ``day``'s spend and the live reservations stay below ``limit``,
        reserving its estimated cost (the model's average on ``day`` or ``previous_day``, else ``estimate``).

        ``dry_run``: only say whether it would be admitted, reserving nothing."""
        keys = [self.keys.usage(day), self.keys.usage(previous_day), self.keys.budget_held]
        answer = self._reserve(keys, [job_id, limit, estimate, spent_field, credits_field, jobs_field,
                                      int(now * 1000), int(lease * 1000), int(dry_run)])
        admitted, spent, reserved, amount = (int(v) for v in answer)
        return Reservation(bool(admitted), spent, reserved, amount)

    def release(self, job_id: str) -> None:
        """Drop the job's reservation (its submission failed or will not happen)."""
        self.connection.hdel(self.keys.budget_held, job_id)

    def reserved(self, now: float) -> int:
        """Micro-credits held by live reservations now."""
        total = 0
        for value in self.connection.hvals(self.keys.budget_held):
            deadline, _, amount = _text(value).partition(" ")
            if deadline.isdigit() and amount.isdigit() and int(deadline) > now * 1000:
                total += int(amount)
        return total

    def days(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        """The counters of each UTC day in ``days`` (``YYYY-MM-DD``), in one round trip."""
        return self._hashes([self.keys.usage(day) for day in days], days)

    def hours(self, hours: Sequence[str]) -> dict[str, dict[str, int]]:
        """The outcome counters of each UTC hour in ``hours`` (``YYYY-MM-DDTHH``), in one round trip."""
        return self._hashes([self.keys.hourly(hour) for hour in hours], hours)

    def _hashes(self, keys: list[str], names: Sequence[str]) -> dict[str, dict[str, int]]:
        # A year is thousands of fields: decoded in bulk (int() reads the bytes as they came).
        return {name: dict(zip([_text(f) for f in pairs[0::2]], map(int, pairs[1::2]), strict=False))
                for name, pairs in zip(names, self._read(keys), strict=False)}

    def set_balance(self, credits: float, at: float, ttl: int) -> None:
        """Keep the account's balance as BFL said it at ``at``; forgotten after ``ttl`` s without a refresh."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(self.keys.bfl_balance, mapping={"credits": repr(float(credits)), "at": repr(float(at))})
        pipe.expire(self.keys.bfl_balance, ttl)
        pipe.execute()

    def balance(self) -> Balance | None:
        """The balance last kept, or None if no worker asked BFL lately."""
        credits, at = self.connection.hmget(self.keys.bfl_balance, "credits", "at")
        if credits is None or at is None:
            return None
        return Balance(float(credits), float(at))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
