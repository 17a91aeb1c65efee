"""Dashboard sessions that were signed out, in Redis: each cookie names its session, and a session
named here is over for every copy of its cookie, whatever the cookie's own signature still says."""

from __future__ import annotations

import hashlib

from redis import Redis

from fluxhook.store.keys import KEYS, Keys


class SignedOutSessions:
    """The record of signed-out dashboard sessions on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys

    def end(self, session_id: str, lifetime: int) -> None:
        """End the session for ``lifetime`` seconds: as long as any copy of its cookie could still be valid."""
        self.connection.set(self._key(session_id), b"1", ex=max(1, lifetime))

    def ended(self, session_id: str) -> bool:
        return bool(self.connection.exists(self._key(session_id)))

    def _key(self, session_id: str) -> str:
        # Only a digest is kept: the key names a session without being one.
        return self.keys.signed_out(hashlib.sha256(session_id.encode()).hexdigest())
