"""BFL accounts cooling down after BFL's refusals, shared by every process: one hash per account,
read by the slot dispatch (``lua/slots_prelude.lua``), so no process sends a task through a cooling account.

Once a cooldown is over, the account is on probation: the dispatch gives it one job, and no other until BFL
accepts that one (the effect ``AccountAccepted`` ends the cooldown) or refuses it (``cool`` again). So an account
still down is tested with one submission at a time, not a slot-full. A probation ends by itself after
``PROBATION`` seconds, in case the probing job never comes back (its worker died).
"""

from __future__ import annotations

from redis import Redis

from fluxhook.core.accounts import Cooling, CoolingReason
from fluxhook.core.holds import SUBMIT_LEASE
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript, text

# A strike against the whole account, not one pool (its refusals that cool it down).
ACCOUNT_WIDE = "*"
# Outlasts one submission: a probing job that neither succeeds nor fails by then is not coming back.
PROBATION = SUBMIT_LEASE


class Cooldowns:
    """The accounts' cooldowns on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._cool = LuaScript(connection, "account_cool")
        self._lift = LuaScript(connection, "account_lift")

    def cool(self, account: str, until: float, reason: CoolingReason, *, lasting: bool = False) -> float:
        """Cool ``account`` down until ``until`` (epoch seconds), or, ``lasting``, until ``lift`` ends it (``until``
        is then when it is next looked at); extended, never shortened. Returns the cooldown's end as it stands."""
        return float(self._cool([self.keys.cooling(account)], [repr(until), str(reason), int(lasting), PROBATION]))

    def lift(self, account: str, reason: CoolingReason, now: float) -> bool:
        """End ``account``'s cooldown for ``reason``; True if it takes tasks again."""
        return bool(self._lift([self.keys.cooling(account)], [str(reason), repr(now)]))

    def of(self, account: str, now: float) -> Cooling | None:
        """Why and until when ``account`` cools down; None when it takes tasks (or one on probation)."""
        return current(self.connection.hmget(self.keys.cooling(account), "until", "reason", "lasting"), now)


def current(fields: list, now: float) -> Cooling | None:
    """The cooldown a hash's ``until``, ``reason`` and ``lasting`` fields describe, if it runs at ``now``."""
    until, reason, lasting = fields
    if until is None or (lasting != b"1" and float(until) <= now):
        return None
    return Cooling(float(until), text(reason) or "")
