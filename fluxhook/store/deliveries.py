"""Notification messages in Redis (SPEC §16): one small hash per message, its attempts inside it, nothing per attempt.

A message (``Keys.message``) holds, as text: ``job``, ``owner`` (the job's app key id, or ``admin``), ``event``,
``kind`` (``webhook``: Standard Webhooks' body; ``bfl``: BFL's callback to the app's own webhook), ``url`` (sealed:
its path or query may hold the app's own token), ``host``, ``target`` (a digest of the URL, what a 410 disables),
``state`` (``STATES``), ``at`` (made, epoch seconds), ``tries`` (attempts since it was made or replayed) and
``attempts``, a JSON list of ``[at, http status or null, error or null, milliseconds]``, the newest ``MAX_ATTEMPTS``.
It expires with its job (the job's TTL at its making), as does the job's list of its messages
(``Keys.job_messages``). Each owner's messages are listed by time (``Keys.owner_messages``), the newest
``OWNER_BOUND`` kept there: a caller cannot grow the index without limit (SPEC §7). A message waiting for a retry is
in ``Keys.messages_due`` as ``<owner>:<id>``, the member its work line takes too.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from fluxhook.core.sealing import Sealer
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import member
from fluxhook.store.scripts import LuaScript

PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"
STATES = (PENDING, DELIVERED, FAILED, DISABLED)
WEBHOOK, BFL = "webhook", "bfl"
MAX_ATTEMPTS = 40
OWNER_BOUND = 100_000


@dataclass(frozen=True)
class Message:
    """One notification: to one target, of one event of one job, with every attempt made of it."""

    id: str
    job_id: str
    owner: str
    event: str
    kind: str
    url: str = field(repr=False)
    host: str
    state: str = PENDING
    created_at: float = 0.0
    tries: int = 0
    attempts: tuple[tuple, ...] = ()

    @property
    def target(self) -> str:
        return target_of(self.url)

    @property
    def member(self) -> str:
        """Its member in the notify work line and in ``messages_due``."""
        return member(self.owner, self.id)


def target_of(url: str) -> str:
    """What a 410 disables: the URL, as a digest (the index keeps no URL in the clear)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


class Deliveries:
    """The notification messages on one Redis connection."""

    def __init__(self, connection: Redis, sealer: Sealer | None = None, keys: Keys = KEYS):
        self.connection = connection
        self.sealer = sealer
        self.keys = keys
        self._claim_due = LuaScript(connection, "claim_due")
        self._set_if_exists = LuaScript(connection, "job_set_if_exists")

    def ask_events(self, job_id: str, events: tuple[str, ...], submitted: str) -> None:
        """Note on the job's record the events beyond its end its notifications carry (``notify_events``); if it
        was already submitted (sent within its request, or tracked), its ``submitted`` event goes to the outbox now, as
        the transition would have put it there had the note been on the record."""
        record = self.keys.job(job_id)
        if not self._set_if_exists([record], ["notify_events", ",".join(events)]):
            return
        if submitted in events and self.connection.hget(record, "submitted_at"):
            self.connection.zadd(self.keys.outbox, {f"{job_id}|{submitted}": time.time()}, nx=True)

    def job_ttl_ms(self, job_id: str) -> int | None:
        """How long the job's record still lives, in milliseconds (None: for good): its messages live as long."""
        ttl = int(self.connection.pttl(self.keys.job(job_id)))
        return ttl if ttl > 0 else None

    def count_of_job(self, job_id: str) -> int:
        """How many messages the job has."""
        return int(self.connection.llen(self.keys.job_messages(job_id)))

    def last_progress(self, job_id: str) -> float | None:
        """When the job's last ``job.progress`` message was made, from its id (``..._progress_<ms>``)."""
        for raw in reversed(self.connection.lrange(self.keys.job_messages(job_id), -20, -1)):
            head, _, ms = _text(raw).rpartition("_progress_")
            if head and ms.isdigit():
                return int(ms) / 1000
        return None

    def existing(self, ids: list[str]) -> set[str]:
        """Those of ``ids`` whose message exists."""
        pipe = self.connection.pipeline(transaction=False)
        for message_id in ids:
            pipe.exists(self.keys.message(message_id))
        return {message_id for message_id, found in zip(ids, pipe.execute(), strict=True) if found}

    def add(self, message: Message, ttl_ms: int | None, pipeline) -> None:
        """Keep a new message on ``pipeline`` (a MULTI): its hash, its place in its job's list and its owner's index;
        expiring in ``ttl_ms`` with its job (None: never)."""
        record, of_job = self.keys.message(message.id), self.keys.job_messages(message.job_id)
        url = self.sealer.seal_text(message.url) if self.sealer else message.url
        pipeline.hset(record, mapping={"job": message.job_id, "owner": message.owner, "event": message.event,
                                       "kind": message.kind, "url": url, "host": message.host,
                                       "target": message.target, "state": message.state,
                                       "at": repr(message.created_at), "tries": message.tries, "attempts": "[]"})
        pipeline.rpush(of_job, message.id)
        if ttl_ms and ttl_ms > 0:
            pipeline.pexpire(record, ttl_ms)
            pipeline.pexpire(of_job, ttl_ms)
        index = self.keys.owner_messages(message.owner)
        pipeline.zadd(index, {message.id: message.created_at})
        pipeline.zremrangebyrank(index, 0, -OWNER_BOUND - 1)

    def get(self, message_id: str) -> Message | None:
        return self.get_many([message_id])[0]

    def get_many(self, ids: list[str]) -> list[Message | None]:
        pipe = self.connection.pipeline(transaction=False)
        for message_id in ids:
            pipe.hgetall(self.keys.message(message_id))
        return [self._from_hash(message_id, data) for message_id, data in zip(ids, pipe.execute(), strict=True)]

    def of_job(self, job_id: str) -> list[Message]:
        """The job's messages, in the order they were made."""
        ids = [_text(i) for i in self.connection.lrange(self.keys.job_messages(job_id), 0, -1)]
        return [m for m in self.get_many(ids) if m is not None]

    def of_owner(self, owner: str, since: float, until: float, limit: int) -> list[Message]:
        """Up to ``limit`` of the owner's messages made from ``since`` to ``until``, newest first; those expired with
        their jobs leave the index as they are met."""
        index = self.keys.owner_messages(owner)
        ids = [_text(i) for i in self.connection.zrevrangebyscore(index, until, since, start=0, num=limit)]
        found = self.get_many(ids)
        gone = [message_id for message_id, message in zip(ids, found, strict=True) if message is None]
        if gone:
            self.connection.zrem(index, *gone)
        return [m for m in found if m is not None]

    def record(self, message: Message, attempt: tuple, state: str, due: float | None) -> None:
        """One attempt made: kept with the message's new ``state``, and its next attempt due at ``due`` (None: none)."""
        attempts = [*message.attempts, attempt][-MAX_ATTEMPTS:]
        pipe = self.connection.pipeline(transaction=True)
        record = self.keys.message(message.id)
        pipe.exists(record)
        pipe.hset(record, mapping={"state": state, "tries": message.tries + 1,
                                   "attempts": json.dumps(attempts, separators=(",", ":"))})
        if due is not None:
            pipe.zadd(self.keys.messages_due, {message.member: due})
        existed = pipe.execute()[0]
        if not existed:  # the job was deleted meanwhile: its message goes with it
            self.connection.delete(record)
            self.connection.zrem(self.keys.messages_due, message.member)

    def set_state(self, message: Message, state: str) -> None:
        self.connection.hset(self.keys.message(message.id), "state", state)

    def again(self, messages: list[Message], when: float) -> None:
        """Send ``messages`` again from ``when``, with a fresh round of retries: pending, due then."""
        pipe = self.connection.pipeline(transaction=True)
        for message in messages:
            pipe.hset(self.keys.message(message.id), mapping={"state": PENDING, "tries": 0})
            pipe.zadd(self.keys.messages_due, {message.member: when})
        pipe.execute()

    def claim_due(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` members due by ``now`` (``claim_due.lua``: they come due again at ``claim`` if their
        move into the work line is lost)."""
        return [_text(i) for i in self._claim_due([self.keys.messages_due], [repr(now), limit, f"{claim:.3f}"])]

    def moved(self, members: list[str], pipeline) -> None:
        """On ``pipeline`` (the MULTI that puts them in the work line): ``members`` are due no more."""
        if members:
            pipeline.zrem(self.keys.messages_due, *members)

    def is_disabled(self, owner: str, target: str) -> bool:
        return bool(self.connection.sismember(self.keys.notify_off(owner), target))

    def disabled(self, owner: str) -> set[str]:
        return {_text(t) for t in self.connection.smembers(self.keys.notify_off(owner))}

    def disable(self, owner: str, target: str) -> None:
        self.connection.sadd(self.keys.notify_off(owner), target)

    def enable(self, owner: str) -> int:
        """Enable every target the owner's receivers disabled; how many there were."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.scard(self.keys.notify_off(owner))
        pipe.delete(self.keys.notify_off(owner))
        return int(pipe.execute()[0])

    def forget_job(self, job_id: str) -> None:
        """Remove a job's messages (the job is deleted): their hashes, their list, their retries."""
        messages = self.of_job(job_id)
        pipe = self.connection.pipeline(transaction=False)
        for message in messages:
            pipe.delete(self.keys.message(message.id))
            pipe.zrem(self.keys.messages_due, message.member)
            pipe.zrem(self.keys.owner_messages(message.owner), message.id)
        pipe.delete(self.keys.job_messages(job_id))
        pipe.execute()

    def _from_hash(self, message_id: str, data: dict) -> Message | None:
        if not data:
            return None
        text = {_text(k): _text(v) for k, v in data.items()}
        url = text.get("url", "")
        if self.sealer and Sealer.is_sealed(url):
            url = self.sealer.open_text(url) or ""
        attempts: Any = json.loads(text.get("attempts") or "[]")
        return Message(id=message_id, job_id=text.get("job", ""), owner=text.get("owner", ""),
                       event=text.get("event", ""), kind=text.get("kind", WEBHOOK), url=url,
                       host=text.get("host", ""), state=text.get("state", PENDING),
                       created_at=float(text.get("at") or 0), tries=int(text.get("tries") or 0),
                       attempts=tuple(tuple(a) for a in attempts))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value
