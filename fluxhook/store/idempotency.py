"""Idempotency-Key records in Redis: a claim while the first request runs, then its answer for 24 hours."""

from __future__ import annotations

from typing import NamedTuple

from redis import Redis

from fluxhook.idempotency import KEEP_SECONDS, Claim
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

CLAIMED, REUSED, IN_USE, DONE = "claimed", "reused", "in_use", "done"


class FirstAnswer(NamedTuple):
    """What became of the first request with a key: ``state`` and, once DONE, its answer."""

    state: str
    status: int = 0
    body: bytes = b""


class IdempotencyStore:
    """The records of Idempotency-Keys on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._begin = LuaScript(connection, "idempotency_begin")
        self._finish = LuaScript(connection, "idempotency_finish")
        self._abandon = LuaScript(connection, "idempotency_abandon")

    def begin(self, claim: Claim, lease: float) -> FirstAnswer:
        """Claim the key for this request, or say what became of the first one (one round trip)."""
        reply = self._begin([self._key(claim)], [claim.fingerprint, int(lease * 1000)])
        state = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if state != DONE:
            return FirstAnswer(state)
        return FirstAnswer(DONE, int(reply[1]), reply[2] if isinstance(reply[2], bytes) else reply[2].encode())

    def finish(self, claim: Claim, status: int, body: bytes) -> bool:
        """Keep the answer to replay for 24 hours; False if the claim had lapsed."""
        return bool(self._finish([self._key(claim)], [claim.fingerprint, status, body, KEEP_SECONDS]))

    def abandon(self, claim: Claim) -> None:
        """Give the key up, so that the client may retry with it."""
        self._abandon([self._key(claim)], [claim.fingerprint])

    def _key(self, claim: Claim) -> str:
        return self.keys.idempotency(claim.scope, claim.key)
