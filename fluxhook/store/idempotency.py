"""Idempotency-Key records in Redis: a hold while the first request runs, then its answer for 24 hours."""

from __future__ import annotations

import secrets
import time
from typing import NamedTuple

from redis import Redis

from fluxhook.core.errors import FailedOver
from fluxhook.core.holds import ANSWER_KEPT, KEYS_INDEX_PAST
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript, text

HELD, REUSED, IN_USE, MADE, DONE, FULL = "held", "reused", "in_use", "made", "done", "full"
# How long the first answer is replayed.
KEEP_SECONDS = ANSWER_KEPT
# Keys one bearer token may hold at once (answers kept, and holds of requests under way): past it,
# 429 until the oldest goes. Only answers of requests that created or found a job are kept, so it
# is reached only by a caller making that many jobs a day; it bounds what Redis keeps for any one.
MAX_KEYS_PER_CALLER = 20_000


class KeyUse(NamedTuple):
    """One request's use of a key: digests only, so no token or key is kept in the clear."""

    scope: str
    key: str
    fingerprint: str


class Begin(NamedTuple):
    """What ``begin`` found: ``state``; the first answer once DONE; this request's ``ticket`` and until when its
    hold lasts (``until_ms``) once HELD; once FULL, the seconds until one of the caller's keys goes;
    once MADE, the job the first request made."""

    state: str
    status: int = 0
    body: bytes = b""
    ticket: str = ""
    retry_after: float = 0.0
    job_id: str = ""
    until_ms: int = 0


class Hold(NamedTuple):
    """A request's hold on a key: its use of the key and its ticket, until when it lasts and the primary it was taken
    on (``begin``). The job the request makes names itself in the key's record in the same step (``JobStore.create``),
    so a repeat finds that job whatever else fails."""

    use: KeyUse
    ticket: str
    until_ms: int
    primary: str = ""


class IdempotencyStore:
    """The records of Idempotency-Keys on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._begin = LuaScript(connection, "idempotency_begin")
        self._finish = LuaScript(connection, "idempotency_finish")
        self._abandon = LuaScript(connection, "idempotency_abandon")

    def begin(self, use: KeyUse, lease: float, primary: str = "") -> Begin:
        """Hold the key for ``lease`` seconds, or say what became of the first request (one round trip). ``primary``:
        the replication id of the primary the request began on, when its writes wait for replicas (``Replication``).
        A hold taken on another primary than the request's own has lapsed: its request is never acknowledged."""
        # The ticket tells this request's hold from a later one on the same key with the same body.
        ticket = secrets.token_hex(16)
        lease_ms, now = max(1, int(lease * 1000)), _now_ms()
        reply = self._begin(record_keys(self.keys, use), [use.fingerprint, lease_ms, ticket, MAX_KEYS_PER_CALLER, now,
                                                          KEEP_SECONDS * 1000, primary])
        state = text(reply[0])
        if state == HELD:
            return Begin(HELD, ticket=ticket, until_ms=now + lease_ms)
        if state == DONE:
            return Begin(DONE, int(reply[1]), _bytes(reply[2]))
        if state == FULL:
            return Begin(FULL, retry_after=int(reply[1]) / 1000)
        if state == MADE:
            return Begin(MADE, job_id=text(reply[1]))
        return Begin(state)

    def finish(self, use: KeyUse, ticket: str, status: int, body: bytes) -> bool:
        """Keep the answer to replay for 24 hours; False if the hold had lapsed (nothing is kept)."""
        return bool(self._finish(record_keys(self.keys, use), [ticket, status, body, KEEP_SECONDS, _now_ms(),
                                                                    KEYS_INDEX_PAST * 1000]))

    def abandon(self, use: KeyUse, ticket: str) -> bool:
        """Give the key up so that the client may retry with it, unless the request made a job that still
        exists (a retry then answers with it); False if the hold was no longer this one."""
        record, callers = record_keys(self.keys, use)
        job_id = self.connection.hget(record, "job")
        job_record = self.keys.job(text(job_id)) if job_id else record
        return bool(self._abandon([record, callers, job_record], [ticket]))


def record_keys(keys: Keys, use: KeyUse) -> list[str]:
    """The keys a script on the used key's record declares: the key's record, then its caller's live keys."""
    return [keys.idempotency(use.scope, use.key), keys.idempotency_of_caller(use.scope)]


def naming_args(hold: Hold) -> dict[str, str]:
    """What job_create.lua needs to name its job in ``hold``'s record: its fingerprint and ticket, until when it
    holds the key (ms) and the primary it was taken on, how long the record lives (ms), now (ms); each as text, as
    Redis keeps it."""
    return {"fingerprint": hold.use.fingerprint, "ticket": hold.ticket, "until": str(hold.until_ms),
            "primary": hold.primary, "lives": str(KEEP_SECONDS * 1000), "now": str(_now_ms())}


def key_taken() -> FailedOver:
    """The refusal of a job whose request's hold on its key is another request's now (job_record.lua made nothing):
    a retry took the key once this request's hold lapsed, with its lease or with the primary it was taken on."""
    return FailedOver("this request's Idempotency-Key was taken by a retry while it was handled (Redis failed over, "
                      "or its hold lapsed): nothing was made; retry it with the same key to get that retry's answer")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
