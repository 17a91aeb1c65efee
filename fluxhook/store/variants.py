"""The variants of each job's stored files that were made, and who is making one now.

Each job has one hash (``Keys.variants``) of the storage keys of its variants: a key is written there (empty) before
its bytes are stored and gets ``<sha256> <size>`` once they are, so deleting the job finds every key that may hold a
file, in either store, without listing the store (a folder of every job's files, a bucket's prefix), and a web
process answers a stored variant (its ``ETag``, a ``304``) from one ``HGET``, without asking the store.

A variant is made by one web process at a time: its maker holds ``Keys.variant_lock`` for a lease; the others asking
for it meanwhile wait for its record (``look``), and take the lock themselves if it lapses unrecorded (its maker
died)."""

from __future__ import annotations

import secrets
from typing import NamedTuple

from redis import Redis

from fluxhook.store.jobs import DEFAULT_TTL
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript, text


class Stored(NamedTuple):
    """A variant whose bytes are stored: its storage key, their sha256 (its ``ETag``) and size."""

    key: str
    sha256: str
    size: int


class Look(NamedTuple):
    """A variant as it stands: stored (``stored``), or being made by some process (``making``), or neither."""

    stored: Stored | None
    making: bool


class VariantRecords:
    """The variants made of each job's files, on one Redis connection."""

    def __init__(self, connection: Redis, ttl: int | None = None, keys: Keys = KEYS):
        self.connection = connection
        # The hash lives as long as a job record may (its TTL, renewed with each variant).
        self.ttl = ttl or DEFAULT_TTL
        self.keys = keys
        self._release = LuaScript(connection, "lock_release")

    def stored(self, job_id: str, key: str) -> Stored | None:
        """The variant stored under ``key``, or None when it is not (yet)."""
        return _stored(key, self.connection.hget(self.keys.variants(job_id), key))

    def look(self, job_id: str, key: str) -> Look:
        """Whether the variant is stored, and whether some process holds its lock now: one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.hget(self.keys.variants(job_id), key)
        pipe.exists(self.keys.variant_lock(job_id, key))
        value, held = pipe.execute()
        return Look(_stored(key, value), bool(held))

    def begin(self, job_id: str, key: str, lease: int) -> tuple[str | None, Stored | None]:
        """Take the variant's lock for ``lease`` seconds and mark its key as one that may hold a file, unless it is
        stored already: (the lock token, None) when this caller makes it now; (None, the stored variant) when it is
        made; (None, None) while another process holds the lock."""
        token = secrets.token_hex(8)
        lock, record = self.keys.variant_lock(job_id, key), self.keys.variants(job_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.set(lock, token, nx=True, ex=lease)
        pipe.hget(record, key)
        taken, value = pipe.execute()
        stored = _stored(key, value)
        if taken and stored is not None:
            self._release([lock], [token])
        if not taken or stored is not None:
            return None, stored
        pipe = self.connection.pipeline(transaction=True)
        pipe.hsetnx(record, key, "")
        pipe.expire(record, self.ttl)
        pipe.execute()
        return token, None

    def record(self, job_id: str, stored: Stored, token: str) -> None:
        """The variant's bytes are stored: record them and free its lock."""
        record = self.keys.variants(job_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.hset(record, stored.key, f"{stored.sha256} {stored.size}")
        pipe.expire(record, self.ttl)
        pipe.execute()
        self.abandon(job_id, stored.key, token)

    def abandon(self, job_id: str, key: str, token: str) -> None:
        """Free the variant's lock (held with ``token``) without its bytes: another request may make it."""
        self._release([self.keys.variant_lock(job_id, key)], [token])

    def forget(self, job_id: str, key: str) -> None:
        """Drop the record of a variant whose bytes the store no longer has (made in another store, or removed by
        hand), so the next request makes it again."""
        self.connection.hdel(self.keys.variants(job_id), key)

    def job_gone(self, job_id: str) -> bool:
        """Whether the job's record is gone (deleted while a variant of it was being made)."""
        return not self.connection.exists(self.keys.job(job_id))

    def take_all(self, job_id: str) -> list[str]:
        """Every storage key that may hold a variant of the job's files, forgotten here at once (the job is being
        erased: its caller deletes the files)."""
        record = self.keys.variants(job_id)
        pipe = self.connection.pipeline(transaction=True)
        pipe.hkeys(record)
        pipe.delete(record)
        names, _ = pipe.execute()
        return sorted(map(text, names))


def _stored(key: str, value: bytes | str | None) -> Stored | None:
    if not value:
        return None
    sha256, size = text(value).split(" ", 1)
    return Stored(key, sha256, int(size))
