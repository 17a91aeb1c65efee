"""An app key's record and the counters its limits are judged by (its queue, its submissions this minute, its spend
today), read in one round trip before a request's body is received (``lua/key_counters.lua``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from redis import Redis

from fluxhook.store.app_keys import RATE_WINDOW, utc_day_left
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import owner_of
from fluxhook.store.scripts import LuaScript, text


@dataclass(frozen=True)
class Counters:
    """What one read found: the key's record (empty: no such key), and its counters."""

    record: dict[str, str]
    # (queued, held for batches being made, limit) when one more job or item would pass its queue limit, else None.
    queue_full: tuple[int, int, int] | None
    # Submissions admitted in the last RATE_WINDOW s, and when the oldest of them was (epoch s; None: none).
    requests_in_window: int
    oldest_request: float | None
    # What the key spent today (micro-credits).
    spent_today: int
    # The request's Idempotency-Key has a record: its first answer is replayed, or its first request still runs.
    replayed: bool
    # When the key's items bucket is full again (epoch s; at or before now: it is full), and its items made today.
    items_full_at: float = 0.0
    items_today: int = 0
    # The deployment's items_per_minute and items_per_day, for a key whose record sets neither.
    items_defaults: tuple[int, int] = (0, 0)


class KeyCounters:
    """The read of ``Counters`` on one Redis connection."""

    def __init__(self, connection: Redis, pools: Sequence[str], keys: Keys = KEYS):
        self.keys = keys
        self.pools = list(pools)
        self._read = LuaScript(connection, "key_counters")

    def read(self, key_id: str, now: float, default_queue_limit: int, spend: tuple[str, str],
             idempotency: str | None = None, items_defaults: tuple[int, int] = (0, 0)) -> Counters:
        """App key ``key_id``'s record and counters at ``now`` (one round trip): ``spend`` is the UTC day and the
        field of its usage counters that hold the key's spend; ``idempotency`` the record key of the request's
        Idempotency-Key, if it sent one; ``items_defaults`` the deployment's items_per_minute and items_per_day."""
        day, spent_field = spend
        keys = self.keys
        record, full, in_window, oldest, spent, replayed, items_full_at, items_today = self._read(
            [keys.app_key(key_id), keys.key_requests(key_id), keys.usage(day), idempotency or keys.app_key(key_id),
             keys.queue_room, keys.queue_room_lapses, keys.queued_jobs, keys.aside, keys.key_items(key_id),
             keys.key_items_today(key_id, utc_day_left(now)[0]),
             *(keys.line(pool) for pool in self.pools)],
            [repr(now), int(RATE_WINDOW * 1000), spent_field, owner_of(key_id), default_queue_limit,
             "1" if idempotency else "0"])
        fields = [text(value) for value in record]
        queued, held, limit = (int(n) for n in full) if full else (0, 0, 0)
        first = float(text(oldest))
        return Counters(record=dict(zip(fields[::2], fields[1::2], strict=True)),
                        queue_full=(queued, held, limit) if full else None, requests_in_window=int(in_window),
                        oldest_request=first / 1000 if first >= 0 else None, spent_today=int(spent),
                        replayed=bool(replayed), items_full_at=float(text(items_full_at)) / 1000,
                        items_today=int(items_today), items_defaults=items_defaults)
