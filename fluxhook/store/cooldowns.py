"""BFL accounts cooling down after BFL's refusals (SPEC §14), shared by every process: one hash per account,
read by the slot dispatch (``lua/slots_prelude.lua``), so no process sends a task through a cooling account."""

from __future__ import annotations

from redis import Redis

from fluxhook.core.accounts import Cooling, CoolingReason
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript


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
        return float(self._cool([self.keys.cooling(account)], [repr(until), str(reason), int(lasting)]))

    def lift(self, account: str, reason: CoolingReason, now: float) -> bool:
        """End ``account``'s cooldown for ``reason``; True if it takes tasks again."""
        return bool(self._lift([self.keys.cooling(account)], [str(reason), repr(now)]))

    def of(self, account: str) -> Cooling | None:
        """Why and until when ``account`` cools down; None when it takes tasks."""
        until, reason = self.connection.hmget(self.keys.cooling(account), "until", "reason")
        if until is None:
            return None
        return Cooling(float(until), reason.decode() if isinstance(reason, bytes) else reason or "")
