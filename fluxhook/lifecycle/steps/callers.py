"""Who sends a request: an admin token or an app key, found from the secret it presents.

A key's secret is ``fhk_<id part>_<43 random characters>`` (256 bits from ``secrets``): shown once, in the
answer that creates it. Only its SHA-256 is kept. A plain hash is enough for a secret of that entropy (no
guess can be tried against it, so a slow password hash buys nothing), and unlike an HMAC keyed from
SECRET_KEY it survives the rotation of SECRET_KEY. The secret names its key's id, so checking it is one
read of that key's record (cached by each process for at most ``CACHE_SECONDS``) and one constant-time
comparison, whatever the number of keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fluxhook.core.errors import Unauthorized
from fluxhook.core.job import iso
from fluxhook.core.recent import Recent
from fluxhook.store.app_keys import AppKey, AppKeys

if TYPE_CHECKING:
    from fluxhook.core.job import Job

SECRET_PREFIX = "fhk_"
ID_PREFIX = "key_"
# How long a process trusts a key record it read: revocation and expiry reach every process within it.
CACHE_SECONDS = 0.5
# ``last_used_at`` is written at most this often per key and process.
TOUCH_EVERY = 60.0
# Key ids found to be no key's, remembered as long as a record (at most this many at once, so forged ids cannot
# fill memory): a forged key refused before its body is read costs one read, not a second when it is answered.
MISSES_KEPT = 4096
_ID_PART = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Caller:
    """Who sent a request: an admin token (``key`` None) or an app key."""

    key: AppKey | None = None

    @property
    def admin(self) -> bool:
        return self.key is None

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.id

    def sees(self, job: Job) -> bool:
        """Whether this caller may see the job: an admin sees every job, a key only its own."""
        return self.key is None or job.key_id == self.key.id

    def may_use(self, model: str) -> bool:
        """Whether this caller may submit to ``model``: an admin any, a key those of its ``models`` (all if unset)."""
        return self.key is None or self.key.models is None or model in self.key.models


ADMIN = Caller()


def digest(secret: str) -> str:
    """What is kept of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the shape of a key id (checked before it reaches a Redis key)."""
    return text.startswith(ID_PREFIX) and bool(_ID_PART.fullmatch(text[len(ID_PREFIX):]))


def key_id_in(secret: str) -> str | None:
    """The key id a presented secret names, or None if it is not shaped like one of ours."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    part, sep, rest = secret[len(SECRET_PREFIX):].partition("_")
    if not sep or not rest or not _ID_PART.fullmatch(part):
        return None
    return ID_PREFIX + part


def key_refusal(key: AppKey, now: float) -> str | None:
    """Why the key may no longer be used at ``now``, and what to do about it; or None while it may be used."""
    if key.revoked_at is not None:
        return "this app key was revoked, and a revoked key cannot come back: ask an admin of this service for a new key"
    if key.expires_at is not None and now >= key.expires_at:
        return (f"this app key expired at {iso(key.expires_at)}: ask an admin of this service to extend it "
                "or for a new key")
    return None


class KeyResolver:
    """Finds the app key a secret belongs to, for one process: at most one Redis read per key id per
    ``CACHE_SECONDS`` (ids that are no key's too), and a write of ``last_used_at`` at most once per ``TOUCH_EVERY``."""

    def __init__(self, store: AppKeys, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock
        self._cache: dict[str, tuple[float, AppKey]] = {}
        self._missing: Recent[str, float] = Recent(MISSES_KEPT)
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def caller(self, secret: str) -> Caller | None:
        """The caller this secret makes, or None if it is no key's; Unauthorized for a revoked or expired key."""
        key, now = self._key_of(secret)
        if key is None:
            return None
        why = key_refusal(key, now)
        if why is not None:
            raise Unauthorized(why)
        self._touch(key, now)
        return Caller(key)

    def refusal(self, secret: str) -> str | None:
        """Why ``secret`` makes no caller: ``""`` when it is no key's secret, else ``key_refusal``'s reason; None when it
        makes one. Its key's record read or found cached; no use recorded."""
        key, now = self._key_of(secret)
        return "" if key is None else key_refusal(key, now)

    def _key_of(self, secret: str) -> tuple[AppKey | None, float]:
        """The key whose secret ``secret`` is (None: no key's), whatever its state, and when it was looked up."""
        key_id = key_id_in(secret)
        now = self.clock()
        key = None if key_id is None else self._record(key_id, now)
        if key is None or not hmac.compare_digest(key.secret_sha256, digest(secret)):
            return None, now
        return key, now

    def record(self, key_id: str) -> AppKey | None:
        """The key ``key_id``'s record as this process last read it (at most ``CACHE_SECONDS`` old), whatever its
        state: for what a key's jobs cost it when no secret is presented (a signed link's read)."""
        return self._record(key_id, self.clock())

    def cached(self, key_id: str) -> tuple[bool, AppKey | None]:
        """Whether this process read key ``key_id``'s record within ``CACHE_SECONDS``, and the key it found (None:
        no such key); no read."""
        now = self.clock()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return True, cached[1]
        missed = self._missing.get(key_id)
        return missed is not None and now - missed < CACHE_SECONDS, None

    def _record(self, key_id: str, now: float) -> AppKey | None:
        known, key = self.cached(key_id)
        if known:
            return key
        key = self.store.get(key_id)
        self.remember(key_id, key, now)
        return key

    def remember(self, key_id: str, key: AppKey | None, now: float) -> None:
        """Keep key ``key_id``'s record (None: no such key) as read at ``now`` by another read than this resolver's
        (one that read its counters with it)."""
        with self._lock:
            if key is None:
                self._cache.pop(key_id, None)
                self._missing[key_id] = now
            else:
                self._missing.pop(key_id, None)
                self._cache[key_id] = (now, key)

    def _touch(self, key: AppKey, now: float) -> None:
        last = max(key.last_used_at or 0.0, self._touched.get(key.id, 0.0))
        if now - last < TOUCH_EVERY:
            return
        with self._lock:
            if now - self._touched.get(key.id, 0.0) < TOUCH_EVERY:
                return
            self._touched[key.id] = now
        self.store.touch(key.id, now)
