"""The streams each caller holds open (docs/api.md: at most ``MAX_STREAMS_PER_CALLER``), and the answers each one is being
written (docs/operating.md: at most ``MAX_ANSWERS_PER_CALLER``), counted in Redis over every web process.

Each open stream is a lease (``Keys.streams_of``: stream id -> when it ends): taken by ``open``, renewed by its web
process every ``RENEW_SECONDS`` while the stream lives, given back by ``close``. A process killed outright leaks
nothing: its streams stop counting once their leases end, within ``STREAM_LEASE``.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from redis import Redis

from fluxhook.core.holds import STREAM_LEASE
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

RENEW_SECONDS = 20


class StreamLeases:
    """Open streams per caller, on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS, clock: Callable[[], float] = time.time,
                 kind: str = "streams"):
        self.connection = connection
        self.clock = clock
        self._key = keys.answers_of if kind == "answers" else keys.streams_of
        self._open = LuaScript(connection, "lease_take")

    def open(self, caller: str, stream_id: str, limit: int) -> bool:
        """Lease one more stream to ``caller``; False (nothing taken) if it holds ``limit`` already."""
        now = int(self.clock() * 1000)
        return bool(self._open([self._key(caller)], [now, STREAM_LEASE * 1000, limit, stream_id]))

    def renew(self, held: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of these (caller, stream id)s, in one round trip; a lease already gone stays gone."""
        held = list(held)
        ends = int((self.clock() + STREAM_LEASE) * 1000)
        pipe = self.connection.pipeline(transaction=False)
        for caller in {caller for caller, _ in held}:
            pipe.pexpire(self._key(caller), STREAM_LEASE * 1000)
        for caller, stream_id in held:
            pipe.zadd(self._key(caller), {stream_id: ends}, xx=True)
        pipe.execute()

    def close(self, caller: str, stream_id: str) -> None:
        """Give the stream's lease back."""
        self.connection.zrem(self._key(caller), stream_id)
