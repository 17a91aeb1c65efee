"""Short-lived locks in Redis: who is downloading or submitting a job right now."""

from __future__ import annotations

from redis import Redis

from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript


class Locks:
    """Locks on one Redis connection; each expires by itself, so a process that dies frees it."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._release_own = LuaScript(connection, "lock_release")

    def acquire(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds if nobody holds it; whether it was free."""
        return bool(self.connection.set(key, value, nx=True, ex=ttl))

    def holder(self, key: str) -> str | None:
        """The value ``key`` is held with, or None if free."""
        value = self.connection.get(key)
        return value.decode() if isinstance(value, bytes) else value

    def relabel(self, key: str, value: str, pipeline) -> None:
        """On ``pipeline``: hold ``key`` with ``value`` from now on, for the rest of its life, only if it is held."""
        pipeline.set(key, value, xx=True, keepttl=True)

    def seconds_left(self, key: str) -> float:
        """Seconds until ``key`` lapses; 0 if free."""
        return max(0.0, self.connection.pttl(key) / 1000)

    def release(self, key: str, value: str | None = None) -> bool:
        """Free ``key``: whoever holds it, or (``value`` given) only if it is still held with ``value``. Whether
        it was freed."""
        if value is None:
            return bool(self.connection.delete(key))
        return bool(self._release_own([key], [value]))
