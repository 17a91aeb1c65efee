"""App keys in Redis: one hash per key, an index of every key by creation time, each key's request log.

The record (``Keys.app_key(id)``) holds ``AppKey``'s fields as text (``encode``): ``prefix``, the secret's first
characters, to recognise it; ``secret_sha256``, never the secret; ``weight`` always (a whole number >= 1: its share of
BFL's slots); ``daily_credits`` in credits; lists comma-separated, flags ``1`` or ``0``, ``end_user_limits`` as JSON,
times in epoch seconds; each notification secret sealed (``core.signing``), never in the clear. A limit that is not set
has no field. Scripts may read ``weight`` and ``max_active`` of a job's key straight from the record; the slots keep
their own copy by owner (``Slots.set_share``), which every change of a key writes in the same step as its record;
``max_queued`` (none: ``MAX_QUEUED_PER_KEY``) is read from the record (``Slots.queue_limit_of``), when its caller did
not read it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, cast

from redis import Redis
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.end_users import EndUserLimits
from fluxhook.core.holds import DAY_ITEMS_PAST
from fluxhook.core.recent import Recent
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import DEFAULT_WEIGHT
from fluxhook.store.scripts import LuaScript, decode_hash, text
from fluxhook.store.slots import Slots

# The window of ``requests_per_minute``.
RATE_WINDOW = 60.0
# A key's read buckets: its own requests, and its jobs' files read by their signed links (``lifecycle.steps.key_limits``
# says why they are two).
READS, LINK_READS = "reads", "links"
# Refused buckets a process remembers at once (the least recently refused forgotten first: it asks Redis again).
REFUSALS_KEPT = 10_000
# Changed: the record exists and was changed; missing: no such key; revoked: it was revoked, nothing changed.
CHANGED, MISSING, REVOKED = 1, 0, 2


@dataclass(frozen=True)
class AppKey:
    """One app key as stored."""

    id: str
    name: str
    prefix: str
    secret_sha256: str
    weight: int = DEFAULT_WEIGHT
    models: tuple[str, ...] | None = None
    daily_credits: float | None = None
    max_active: int | None = None
    # The most of its jobs and batch items queued for BFL at once (None: the deployment's MAX_QUEUED_PER_KEY).
    max_queued: int | None = None
    requests_per_minute: int | None = None
    # Its reads a minute, and the items (jobs and batch items) it may create a minute and a UTC day; None: the
    # deployment's READS_PER_MINUTE, ITEMS_PER_MINUTE, ITEMS_PER_DAY (the ``*_limit`` methods below say which holds).
    reads_per_minute: int | None = None
    items_per_minute: int | None = None
    items_per_day: int | None = None
    expires_at: float | None = None
    # The BFL accounts its jobs may go through (names; None: any) and the region they must stay in (None: any).
    accounts: tuple[str, ...] | None = None
    region: str | None = None
    created_at: float = 0.0
    last_used_at: float | None = None
    revoked_at: float | None = None
    # Where its jobs' notifications go when a job names no notify_url, and the events it asks for.
    notify_url: str | None = None
    notify_events: tuple[str, ...] | None = None
    # Sealed: the secret that signs its notifications, the one it replaced and when (both sign for a day).
    notify_secret: str | None = field(default=None, repr=False)
    notify_secret_old: str | None = field(default=None, repr=False)
    notify_rotated_at: float | None = None
    # Whether a field of a job's input that the model's schema does not know is refused (400) rather than warned of.
    strict_input: bool = False
    # What each of its end users may do unless its own record says otherwise (``core.end_users``; None: no limit of
    # theirs), and how many of an end user's jobs BFL may moderate in a UTC day before it is blocked (None: never).
    end_user_limits: EndUserLimits | None = None
    end_user_moderation_limit: int | None = None
    # Whether an admin ever set an end user's own limits or blocked one (``store/end_users.py``): until then a new job
    # of its end users has nothing of theirs to read unless its key's limits ask for a count.
    end_user_records: bool = False

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> AppKey:
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name not in _FIELDS or raw == "":
                continue
            values[name] = tuple(m for m in raw.split(",") if m) if name in _LISTS else _FIELDS[name](raw)
        return cls(**values)

    def reads_limit(self, config: Config) -> int:
        """The reads a minute this key may make: its own ``reads_per_minute``, else READS_PER_MINUTE."""
        return self.reads_per_minute if self.reads_per_minute is not None else config.reads_per_minute

    def items_minute_limit(self, config: Config) -> int:
        """The items a minute this key may create: its own ``items_per_minute``, else ITEMS_PER_MINUTE."""
        return self.items_per_minute if self.items_per_minute is not None else config.items_per_minute

    def items_day_limit(self, config: Config) -> int:
        """The items a UTC day this key may create: its own ``items_per_day``, else ITEMS_PER_DAY."""
        return self.items_per_day if self.items_per_day is not None else config.items_per_day

    def to_fields(self) -> dict[FieldT, EncodableT]:
        """The record's fields (a limit that is not set is left out)."""
        out: dict[FieldT, EncodableT] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = encode(f.name, value)
        return out


def encode(name: str, value: Any) -> str:
    """A field's value as the record keeps it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, EndUserLimits):
        return value.encode()
    if name in _LISTS:
        return ",".join(value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


_LISTS = ("models", "accounts", "notify_events")
_FIELDS: dict[str, Callable[[str], Any]] = {
           "id": str, "name": str, "prefix": str, "secret_sha256": str, "weight": int, "models": str, "accounts": str,
           "region": str,
           "daily_credits": float, "max_active": int, "max_queued": int, "requests_per_minute": int,
           "reads_per_minute": int, "items_per_minute": int, "items_per_day": int, "expires_at": float,
           "created_at": float, "last_used_at": float, "revoked_at": float,
           "notify_url": str, "notify_events": str, "notify_secret": str, "notify_secret_old": str,
           "notify_rotated_at": float, "strict_input": lambda raw: raw == "1",
           "end_user_limits": EndUserLimits.decode, "end_user_moderation_limit": int,
           "end_user_records": lambda raw: raw == "1"}


class AppKeys:
    """The app keys on one Redis connection."""

    def __init__(self, connection: Redis, slots: Slots, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        # A key's weight and max_active are the slots' business too: they keep them by owner.
        self.slots = slots
        self._take_request = LuaScript(connection, "app_key_take_request")
        self._take_read = LuaScript(connection, "app_key_take_read")
        self._take_items = LuaScript(connection, "app_key_take_items")
        self._give_items = LuaScript(connection, "app_key_give_items")
        # This process's refused read buckets: (key id, bucket) -> (when one unit is back, seconds a unit takes).
        self._refused: Recent[tuple[str, str], tuple[float, float]] = Recent(REFUSALS_KEPT)
        self._refused_lock = threading.Lock()
        self._set_if_exists = LuaScript(connection, "job_set_if_exists")

    def create(self, key: AppKey) -> None:
        """Keep a new key (its record, its place in the index, its share of the slots), in one step."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(self.keys.app_key(key.id), mapping=key.to_fields())
        pipe.zadd(self.keys.app_keys, {key.id: key.created_at})
        self.slots.set_share(key.id, key.weight, key.max_active, pipeline=pipe)
        pipe.execute()

    def get(self, key_id: str) -> AppKey | None:
        """The key with this id (revoked or not), or None: one round trip."""
        data = self.connection.hgetall(self.keys.app_key(key_id))
        return AppKey.from_hash(decode_hash(data)) if data else None

    def ids(self) -> list[str]:
        """Every key's id, newest first."""
        return [text(i) for i in self.connection.zrevrange(self.keys.app_keys, 0, -1)]

    def all(self) -> list[AppKey]:
        """Every key, newest first (two round trips)."""
        ids = self.ids()
        pipe = self.connection.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self.keys.app_key(key_id))
        return [AppKey.from_hash(decode_hash(d)) for d in pipe.execute() if d]

    def change(self, key_id: str, values: dict[str, Any], unset: tuple[str, ...] = ()) -> int:
        """Set ``values`` and remove the ``unset`` fields of a key that is not revoked, and its share of the slots
        with them, in one step (optimistic: retried if the key changed meanwhile): CHANGED, MISSING or REVOKED."""
        record = self.keys.app_key(key_id)

        def attempt(pipe: Pipeline) -> int:
            data = pipe.hgetall(record)
            if not data:
                return MISSING
            key = AppKey.from_hash(decode_hash(data))
            if key.revoked_at is not None:
                return REVOKED
            removed: dict[str, Any] = dict.fromkeys(unset)
            changed = replace(key, **values, **removed)
            pipe.multi()
            if values:
                pipe.hset(record, mapping={name: encode(name, value) for name, value in values.items()})
            if unset:
                pipe.hdel(record, *unset)
            if changed.revoked_at is not None:
                self.slots.drop_share(key_id, pipeline=pipe)  # its queued jobs end: nothing left to weigh
            else:
                self.slots.set_share(key_id, changed.weight, changed.max_active, pipeline=pipe)
            return CHANGED

        return cast(int, self.connection.transaction(attempt, record, value_from_callable=True))  # type: ignore[arg-type]

    def revoke(self, key_id: str, now: float) -> int:
        """Mark the key revoked at ``now``: CHANGED, MISSING, or REVOKED (it already was; its time is kept)."""
        return self.change(key_id, {"revoked_at": now})

    def touch(self, key_id: str, now: float) -> None:
        """Record that the key was used at ``now`` (a key removed meanwhile is not recreated)."""
        self._set_if_exists([self.keys.app_key(key_id)], ["last_used_at", repr(now)])

    def keep_notify_secret(self, key_id: str, sealed: str) -> str | None:
        """The key's sealed notification secret: ``sealed`` if it had none yet (a key made before keys had their
        own), else the one it has; None if there is no such key."""
        record = self.keys.app_key(key_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.exists(record)
        pipe.hget(record, "notify_secret")
        exists, kept = pipe.execute()
        if not exists:
            return None
        if kept is None and self.connection.hsetnx(record, "notify_secret", sealed):
            return sealed
        return text(kept if kept is not None else self.connection.hget(record, "notify_secret"))

    def take_request(self, key_id: str, limit: int, now: float, request: str | None = None) -> float:
        """Admit one submission within ``limit`` per ``RATE_WINDOW`` (0.0), or the seconds until one would be;
        ``request`` names it in the window, for ``give_back_request``."""
        waited = self._take_request([self.keys.key_requests(key_id)],
                                    [int(now * 1000), int(RATE_WINDOW * 1000), limit, request or uuid.uuid4().hex])
        return int(waited) / 1000

    def take_read(self, key_id: str, per_minute: int, burst: int, cost: int, now: float,
                  bucket: str = READS) -> float:
        """Admit one read costing ``cost`` units against the key's ``per_minute`` units, at most ``burst`` at once
        (0.0), or the seconds until it would be (nothing counted). A token bucket, exact over every process
        (``lua/app_key_take_read.lua``); ``bucket``: READS (the key's requests) or LINK_READS (its jobs' files read
        by their signed links).

        A refusal is remembered by this process until the bucket could hold one unit again: meanwhile the key's reads
        are refused from memory, with no Redis step (a flood ignoring ``429`` costs Redis nothing). Never longer
        than Redis would refuse: a bucket only refills with time, so no unit can come back sooner."""
        cost = max(1, min(cost, burst))
        interval = 60.0 / per_minute
        remembered = self.refused_for(key_id, cost, now, bucket)
        if remembered > 0:
            return remembered
        clock = self.keys.key_link_reads(key_id) if bucket == LINK_READS else self.keys.key_reads(key_id)
        waited = int(self._take_read([clock], [int(now * 1000), interval * 1000, burst, cost, "0"])) / 1000
        if waited > 0:
            with self._refused_lock:
                self._refused[(key_id, bucket)] = (now + waited - (cost - 1) * interval, interval)
        return waited

    def refused_for(self, key_id: str, cost: int, now: float, bucket: str = READS) -> float:
        """The seconds this process knows a read of ``cost`` units by the key would still wait (0.0: ask Redis)."""
        with self._refused_lock:
            kept = self._refused.get((key_id, bucket))
            if kept is None:
                return 0.0
            until, interval = kept
            if now >= until:
                del self._refused[(key_id, bucket)]
                return 0.0
        return until - now + (max(1, cost) - 1) * interval

    def charge_read(self, key_id: str, per_minute: int, burst: int, cost: int, now: float) -> None:
        """Count ``cost`` units already spent against the key's reads, whatever its bucket holds: its next reads wait
        until they are paid back."""
        self._take_read([self.keys.key_reads(key_id)], [int(now * 1000), 60_000 / per_minute, burst, cost, "1"])

    def take_items(self, key_id: str, items: int, per_minute: int, burst: int, per_day: int,
                   now: float) -> tuple[str, float]:
        """Admit ``items`` new items of the key within ``per_minute`` (a bucket of ``burst``) and ``per_day`` a UTC day
        (``lua/app_key_take_items.lua``): ``("", 0.0)``, or which limit refuses them (``"minute"``, ``"day"``) and the
        seconds until they would be admitted (nothing counted)."""
        day, left_ms = utc_day_left(now)
        refused, wait_ms = self._take_items(
            [self.keys.key_items(key_id), self.keys.key_items_today(key_id, day)],
            [int(now * 1000), 60_000 / per_minute, burst, min(items, burst), per_day, left_ms, DAY_ITEMS_PAST * 1000])
        return ("", "minute", "day")[int(refused)], int(wait_ms) / 1000

    def give_back_items(self, key_id: str, items: int, per_minute: int, now: float) -> None:
        """Items admitted by ``take_items`` were not made after all (the request was refused): they count nothing
        (``lua/app_key_give_items.lua``)."""
        day, _ = utc_day_left(now)
        self._give_items([self.keys.key_items(key_id), self.keys.key_items_today(key_id, day)],
                         [int(now * 1000), 60_000 / per_minute, items])

    def give_back_request(self, key_id: str, request: str) -> None:
        """Take an admitted submission back out of the key's window: it was refused after all."""
        self.connection.zrem(self.keys.key_requests(key_id), request)

    def queued_jobs(self, key_id: str) -> list[str]:
        """The ids of the key's queued jobs, walking only the queued ones."""
        queued = [text(i) for i in self.connection.zrange(self.keys.status(st.QUEUED), 0, -1)]
        pipe = self.connection.pipeline(transaction=False)
        for job_id in queued:
            pipe.zscore(self.keys.key_jobs(key_id), job_id)
        return [job_id for job_id, score in zip(queued, pipe.execute(), strict=True) if score is not None]


def utc_day_left(now: float) -> tuple[str, int]:
    """The UTC day of ``now`` (``YYYY-MM-DD``) and the milliseconds left of it."""
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return day, max(1, int((86_400 - now % 86_400) * 1000))
