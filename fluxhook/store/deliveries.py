"""Notification messages in Redis (docs/api.md, docs/scaling.md): one small hash per message, its attempts inside it, nothing per
attempt and nothing per job beyond two short fields of its record.

A message (``Keys.message``) holds, as text: ``job``, ``owner`` (the job's app key id, or ``admin``), ``event``,
``kind`` (``webhook``: Standard Webhooks' body to the job's notify_url; ``bfl``: BFL's callback to the app's own
webhook_url: the URL itself is the job's, never copied here), ``host``, ``target`` (a digest of the URL, what a 410
disables), ``state`` (``STATES``), ``at`` (made, epoch seconds), ``tries`` (attempts since it was made or
replayed), ``n`` (attempts in all), ``bulk`` (``1`` for a batch item's message, absent otherwise), ``eu`` (its job's
end user's tag, ``owners.tag``, absent for none), ``dl`` (its job's deadline, absent for none) and one field per
attempt, ``a<i>`` = ``at,status,error,ms`` for the newest ``MAX_ATTEMPTS``. Every value stays short, so Redis keeps
the hash in its compact encoding (a few hundred bytes). It expires with its job (the job's TTL at its making). A
job's messages have ids made from its id (``ids_of``); its record keeps how many ``job.progress`` messages it has
and when the last was made (``notify_progress``). Each owner's messages are listed by time (``Keys.owner_messages``),
the newest ``OWNER_BOUND`` kept there: a caller cannot grow the index without limit.

A message waiting for an attempt, its first or a retry, is in ``Keys.notify_due`` (its member: ``notify_member``), taken
from there one way (``take``, ``lua/notify_take.lua``) by the rule of every line: turns between keys by their ``weight``
(``lua/fair_turns.lua``), within a key between its end users (those of none as one), within each its single jobs' messages
(and its batches' own) before its batch items' (``owners.BULK``), then the earliest deadline (its job's, when before its
due time; else its due time), also when they come back from behind a full receiver. At most ``PER_RECEIVER`` attempts are
in flight to one receiver of one owner and ``PER_OWNER`` for one owner, over every process, each held by one lease
(``ATTEMPT_LEASE``): its message due at the lease's end, and noted in flight until then (``Keys.notify_busy``'s
``m:<member>``). An attempt that ends gives its room back (``finish``, ``record``, ``set_state``); one whose process died
is due again once its lease lapses, its room given back by the take that finds it so: nothing else looks for lapsed
attempts. An attempt's end settles the message only while the note still holds its lease (``Attempt``): one that outlived
it, the message taken again meanwhile, leaves the newer attempt's hold alone and keeps only its answer and, a 2xx, the
message delivered (``lua/notify_finish.lua``). During a rolling deploy an older release's process notes its attempts in a
set of its own (``Keys.legacy_notify_sending``): ``lua/notify_take.lua`` says what each side does with the other's, and
why nothing is sent twice at once (beyond what the message id lets a receiver drop) nor room held for good;
``fluxhook migrate --again`` hands the older release's over once it stopped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection
from dataclasses import dataclass

from redis import Redis

from fluxhook.core.holds import ATTEMPT_LEASE
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import BULK, DEFAULT_WEIGHT, END_USER
from fluxhook.store.scripts import LuaScript, decode_hash, text
from fluxhook.store.wakes import Watched, push

PENDING, DELIVERED, FAILED, DISABLED = "pending", "delivered", "failed", "disabled"
STATES = (PENDING, DELIVERED, FAILED, DISABLED)
WEBHOOK, BFL = "webhook", "bfl"
MAX_ATTEMPTS = 40
OWNER_BOUND = 100_000
# The job record's field: "<job.progress messages made>,<when the last was made>".
PROGRESS_FIELD = "notify_progress"
# Attempts in flight at once to one receiver (an owner's host and port), and for one owner, over every worker
# process: a receiver that trickles its answers holds two attempts, an owner's receivers at most four.
PER_RECEIVER = 2
PER_OWNER = 4
# Most messages one take looks at: those it parks (their receiver full) and the one it takes.
TAKE_LOOKS = 200
# The busy hash's fields that note an attempt in flight, ``m:<member>`` -> its lease (``lua/notify_room.lua``'s note).
IN_FLIGHT = "m:"


@dataclass(frozen=True)
class Message:
    """One notification: to one target, of one event of one job, with every attempt made of it (``attempts``:
    ``(at, http status or None, error or None, milliseconds)``, oldest first)."""

    id: str
    job_id: str
    owner: str
    event: str
    kind: str
    host: str
    target: str
    state: str = PENDING
    created_at: float = 0.0
    tries: int = 0
    count: int = 0
    attempts: tuple[tuple, ...] = ()
    # A batch item's (its job's ``batch_id`` set): its attempts go after its end user's other messages'.
    bulk: bool = False
    # Its job's end user's tag (``owners.tag``; '' for none): its attempts take turns with the key's other end users'.
    tag: str = ""
    # Its job's deadline (``Cancel-After``; None: none): its message goes before its end user's due later.
    deadline: float | None = None

    @property
    def member(self) -> str:
        """Its member in ``notify_due``: its owner and receiver are what its attempt's room is counted by."""
        return notify_member(self.owner, self.host, self.id, bulk=self.bulk, tag=self.tag, deadline=self.deadline)


def notify_member(owner: str, host: str, message_id: str, *, bulk: bool = False, tag: str = "",
                  deadline: float | None = None) -> str:
    """``<owner>|<host>|<message id>``, a batch item's (``bulk``) ``<owner>|<host>|~|<message id>``, an end user's
    (``tag``) with ``!<tag>|`` before the id, then ``@<deadline>|`` for a job with one (``lua/notify_room.lua`` reads
    the marks); a ``|`` in the host (never in a valid one) would split it wrongly."""
    return (f"{owner}|{host.replace('|', '_')}|{BULK + '|' if bulk else ''}{END_USER + tag + '|' if tag else ''}"
            f"{'' if deadline is None else f'@{deadline:.3f}|'}{message_id}")


def member_message(item: str) -> str:
    """The message id of a ``notify_due`` member (its last field, marked or not)."""
    return item.rsplit("|", 1)[-1]


@dataclass(frozen=True)
class Attempt:
    """An attempt a take handed out: its message's member, and the lease the take wrote in its note (as text, as
    written), which its end shows: only the attempt whose lease the note still holds settles the message."""

    member: str
    lease: str


@dataclass(frozen=True)
class Taken:
    """What one ``take`` found: the messages whose attempt is now the caller's, under the one ``lease`` the take
    wrote for each, and whether events wait in the outbox to be made into messages."""

    members: list[str]
    events_due: bool
    lease: str = ""

    @property
    def attempts(self) -> list[Attempt]:
        return [Attempt(member, self.lease) for member in self.members]


@dataclass(frozen=True)
class Rest:
    """What a notifier at rest waits for: until ``due`` (a Unix time; None: nothing waits) or a wake-up, the guard
    looking at ``watched`` meanwhile (``Deliveries.rest``)."""

    due: float | None
    watched: Watched


def target_of(url: str) -> str:
    """What a 410 disables: the URL, as a digest (Redis keeps no URL of a message in the clear)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def ids_of(job_id: str, progress: int) -> list[str]:
    """Every id a job's messages may have, in the order its events come (``lifecycle.notifications.message_id``)."""
    return [f"msg_{job_id}_submitted", *(f"msg_{job_id}_progress_{n}" for n in range(1, progress + 1)),
            f"msg_{job_id}", f"msg_{job_id}_bfl"]


class Deliveries:
    """The notification messages on one Redis connection."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        self._take = LuaScript(connection, "notify_take")
        self._finish = LuaScript(connection, "notify_finish")
        self._forget = LuaScript(connection, "notify_forget")
        self._set_if_exists = LuaScript(connection, "job_set_if_exists")
        self._outbox_add = LuaScript(connection, "outbox_add")

    # -- a job's side

    def ask_events(self, job_ids: list[str], events: tuple[str, ...], submitted: str) -> None:
        """Note on each job's record the events beyond its end its notifications carry (``notify_events``); for one
        already submitted (sent within its request, tracked, or taken by a sender meanwhile), its ``submitted`` event
        goes to the outbox now, as the transition would have put it there had the note been on the record. Two round
        trips, however many jobs."""
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            self._set_if_exists([self.keys.job(job_id)], ["notify_events", ",".join(events)], client=pipe)
            pipe.hget(self.keys.job(job_id), "submitted_at")  # after the note: a later submission sees the note
        replies = pipe.execute() if job_ids else []
        passed = [job_id for job_id, noted, submitted_at in zip(job_ids, replies[::2], replies[1::2], strict=True)
                  if noted and submitted_at]
        if submitted in events and passed:
            self.into_outbox({f"{job_id}|{submitted}": time.time() for job_id in passed}, only_new=True)

    def into_outbox(self, members: dict[str, float], *, only_new: bool = False, pipeline=None) -> None:
        """Put ``members`` in the notification outbox at their scores and wake a notifier, in one step
        (``lua/outbox_add.lua``): the one way Python makes a notifier's work due. ``only_new``: leave a member already
        there as it is."""
        if members:
            self._outbox_add([self.keys.outbox, self.keys.notify_added],
                             ["1" if only_new else "0", *(word for member, score in members.items()
                                                         for word in (repr(score), member))], client=pipeline)

    def progress_of(self, job_id: str) -> tuple[int, float | None]:
        """How many ``job.progress`` messages the job has, and when the last was made."""
        raw = text(self.connection.hget(self.keys.job(job_id), PROGRESS_FIELD) or b"")
        count, _, last = raw.partition(",")
        return (int(count), float(last)) if count.isdigit() and last else (0, None)

    def note_progress(self, job_id: str, count: int, when: float, pipeline) -> None:
        """On ``pipeline``: the job's ``count``-th progress message was made at ``when`` (a record that is gone is
        not recreated)."""
        self._set_if_exists([self.keys.job(job_id)], [PROGRESS_FIELD, f"{count},{when:.3f}"], client=pipeline)

    def job_ttl_ms(self, job_id: str) -> int | None:
        """How long the job's record still lives, in milliseconds (None: for good): its messages live as long."""
        ttl = int(self.connection.pttl(self.keys.job(job_id)))
        return ttl if ttl > 0 else None

    # -- messages

    def existing(self, ids: list[str]) -> set[str]:
        pipe = self.connection.pipeline(transaction=False)
        for message_id in ids:
            pipe.exists(self.keys.message(message_id))
        return {message_id for message_id, found in zip(ids, pipe.execute(), strict=True) if found}

    def add(self, message: Message, ttl_ms: int | None, pipeline) -> None:
        """Keep a new message on ``pipeline`` (a MULTI): its hash and its place in its owner's index, expiring in
        ``ttl_ms`` with its job (None: never)."""
        record = self.keys.message(message.id)
        pipeline.hset(record, mapping={"job": message.job_id, "owner": message.owner, "event": message.event,
                                       "kind": message.kind, "host": message.host, "target": message.target,
                                       "state": message.state, "at": f"{message.created_at:.3f}", "tries": 0, "n": 0,
                                       **({"bulk": 1} if message.bulk else {}),
                                       **({"eu": message.tag} if message.tag else {}),
                                       **({"dl": f"{message.deadline:.3f}"} if message.deadline is not None else {})})
        if ttl_ms and ttl_ms > 0:
            pipeline.pexpire(record, ttl_ms)
        index = self.keys.owner_messages(message.owner)
        pipeline.zadd(index, {message.id: message.created_at})
        pipeline.zremrangebyrank(index, 0, -OWNER_BOUND - 1)

    def get(self, message_id: str) -> Message | None:
        return self.get_many([message_id])[0]

    def get_many(self, ids: list[str]) -> list[Message | None]:
        pipe = self.connection.pipeline(transaction=False)
        for message_id in ids:
            pipe.hgetall(self.keys.message(message_id))
        return [_from_hash(message_id, data) for message_id, data in zip(ids, pipe.execute(), strict=True)]

    def of_job(self, job_id: str) -> list[Message]:
        """The job's messages, in the order they were made."""
        found = [m for m in self.get_many(ids_of(job_id, self.progress_of(job_id)[0])) if m is not None]
        return sorted(found, key=lambda m: m.created_at)

    def of_owner(self, owner: str, since: float, until: float | str, offset: int, count: int) -> tuple[list[Message], int]:
        """The owner's messages made from ``since`` to ``until``, newest first, from the ``offset``-th, ``count`` of
        them at most, and how many entries of the index were read (those expired with their jobs among them: they
        leave the index as they are met, so the next page starts ``len(messages)`` further)."""
        index = self.keys.owner_messages(owner)
        ids = [text(i) for i in self.connection.zrevrangebyscore(index, until, since, start=offset, num=count)]
        found = self.get_many(ids)
        gone = [message_id for message_id, message in zip(ids, found, strict=True) if message is None]
        if gone:
            self.connection.zrem(index, *gone)
        return [m for m in found if m is not None], len(ids)

    def record(self, attempt: Attempt, message: Message, answer: tuple, state: str, due: float | None) -> bool:
        """``attempt`` of ``message`` made, its ``answer`` ``(at, http status or None, error or None, ms)``: kept with
        the message's new ``state``, its room given back, and its next attempt due at ``due`` (None: none), in one
        step; whether it still held the message (else only its answer is kept, and a 2xx's message delivered:
        ``lua/notify_finish.lua``). A message whose job was deleted meanwhile is not recreated."""
        at, status, error, ms = answer
        return self._end(attempt, due, state, f"{at:.2f},{'' if status is None else status},{error or ''},{ms}",
                         message.tries + 1)

    def set_state(self, attempt: Attempt, state: str) -> bool:
        """The message of ``attempt`` will not be attempted (``state``): its room given back; whether the attempt still
        held it (else nothing changes)."""
        return self._end(attempt, None, state)

    def finish(self, attempt: Attempt, due: float | None = None) -> bool:
        """``attempt`` ended with nothing to keep (its message gone or not pending): its room back, its message due
        again at ``due`` (None: not); whether it still held the message (else nothing changes)."""
        return self._end(attempt, due)

    def _end(self, attempt: Attempt, due: float | None, state: str = "", answer: str = "", tries: int = 0) -> bool:
        return bool(self._finish([*self._room_keys, self.keys.notify_added,
                                  self.keys.message(member_message(attempt.member))],
                                 [attempt.member, attempt.lease, "" if due is None else f"{due:.3f}", state, answer,
                                  tries, MAX_ATTEMPTS]))

    def again(self, messages: list[Message], when: float) -> None:
        """Send ``messages`` again from ``when``, with a fresh round of retries: pending, due then."""
        pipe = self.connection.pipeline(transaction=True)
        for message in messages:
            pipe.hset(self.keys.message(message.id), mapping={"state": PENDING, "tries": 0})
            pipe.zadd(self.keys.notify_due, {message.member: when})
        if messages:
            push(pipe, self.keys.notify_added)  # a notifier at rest waits for the earliest due it knew of
        pipe.execute()

    def schedule(self, messages: list[Message], when: float, pipeline, *, wake: bool) -> None:
        """On ``pipeline``: the messages' first attempts are due at ``when`` (a repeat does not move one), and with
        ``wake`` a notifier is woken for them in the same step, once however many (the caller's step is the one that
        made them due; only a notifier that takes them itself at once has none to wake)."""
        if not messages:
            return
        pipeline.zadd(self.keys.notify_due, {message.member: when for message in messages}, nx=True)
        if wake:
            push(pipeline, self.keys.notify_added)

    def rest(self, own: Collection[Attempt] = ()) -> Rest:
        """What a notifier at rest waits for, its ``own`` attempts under way: the earliest message or outbox event due
        (an attempt under way: when its lease lapses) but its own attempts' leases (their ends make due what they make
        due and wake a notifier in the same step; another process's lease it waits for, as that process may have died),
        and what the guard watches meanwhile: anything due before the earliest entry of either set, its own included
        (the guard looks while they are under way too, and they are no lost wake-up). Two commands."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.zrange(self.keys.notify_due, 0, len(own), withscores=True)  # past its own, were they first
        pipe.zrange(self.keys.outbox, 0, 0, withscores=True)
        ahead, events = pipe.execute()
        leases = {attempt.member: float(attempt.lease) for attempt in own}
        others = [float(score) for member, score in ahead if leases.get(text(member)) != float(score)]
        due = min(others[:1] + [float(score) for _, score in events], default=None)
        seen = min([float(score) for _, score in ahead[:1] + events], default=None)
        keys = (self.keys.notify_due, self.keys.outbox)
        return Rest(due, Watched(present=keys) if seen is None else Watched(earlier=tuple((key, seen) for key in keys)))

    def take(self, now: float, most: int) -> Taken:
        """Take up to ``most`` messages whose attempt is due, in turns between their owners by their weights, as far as
        their receivers and owners have room (``lua/notify_take.lua``); each is the caller's to attempt until its end
        (``record``, ``set_state``, ``finish``, each showing the take's lease) or the lease lapses."""
        lease = f"{now + ATTEMPT_LEASE:.3f}"
        members, events = self._take([*self._room_keys, self.keys.outbox, self.keys.notify_passes,
                                      self.keys.share_weights],
                                     [repr(now), lease, PER_RECEIVER, PER_OWNER, most, TAKE_LOOKS, DEFAULT_WEIGHT])
        return Taken([text(m) for m in members], int(events) > 0, lease)

    @property
    def _room_keys(self) -> list[str]:
        return [self.keys.notify_due, self.keys.notify_busy, self.keys.notify_parked]

    # -- targets a 410 disabled

    def is_disabled(self, owner: str, target: str) -> bool:
        return bool(self.connection.sismember(self.keys.notify_off(owner), target))

    def disabled(self, owner: str) -> set[str]:
        return {text(t) for t in self.connection.smembers(self.keys.notify_off(owner))}

    def disable(self, owner: str, target: str) -> None:
        self.connection.sadd(self.keys.notify_off(owner), target)

    def enable(self, owner: str) -> int:
        """Enable every target the owner's receivers disabled; how many there were."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.scard(self.keys.notify_off(owner))
        pipe.delete(self.keys.notify_off(owner))
        return int(pipe.execute()[0])

    def forget_job(self, job_id: str, progress: int) -> None:
        """Remove a job's messages (the job is deleted; it had ``progress`` progress messages): their hashes, their
        retries, their places in their owner's index."""
        messages = [m for m in self.get_many(ids_of(job_id, progress)) if m is not None]
        pipe = self.connection.pipeline(transaction=False)
        for message in messages:
            pipe.delete(self.keys.message(message.id))
            pipe.zrem(self.keys.owner_messages(message.owner), message.id)
        if messages:
            # Out of the due set, but one whose attempt is under way stays due at its lease: its receiver holds it
            # until it ends (its own ``finish``) or, its process dead, until the lease lapses and a take gives it back.
            self._forget([self.keys.notify_due, self.keys.notify_busy], [m.member for m in messages], client=pipe)
        pipe.execute()


def _from_hash(message_id: str, data: dict) -> Message | None:
    if not data:
        return None
    fields = decode_hash(data)
    count = int(fields.get("n") or 0)
    # Attempt k (0-based, of ``count``) is in field a<k % MAX_ATTEMPTS>: the newest MAX_ATTEMPTS, oldest first.
    slots = sorted(int(name[1:]) for name in fields if name[:1] == "a" and name[1:].isdigit())
    order = sorted(slots, key=lambda i: (count - 1) - ((count - 1 - i) % MAX_ATTEMPTS))
    attempts = [_attempt(fields[f"a{i}"]) for i in order]
    return Message(id=message_id, job_id=fields.get("job", ""), owner=fields.get("owner", ""),
                   event=fields.get("event", ""), kind=fields.get("kind", WEBHOOK), host=fields.get("host", ""),
                   target=fields.get("target", ""), state=fields.get("state", PENDING),
                   created_at=float(fields.get("at") or 0), tries=int(fields.get("tries") or 0),
                   count=count, attempts=tuple(attempts), bulk=fields.get("bulk") == "1",
                   tag=fields.get("eu", ""), deadline=float(fields["dl"]) if "dl" in fields else None)


def _attempt(value: str) -> tuple:
    at, status, error, ms = value.split(",", 3)
    return float(at), int(status) if status else None, error or None, int(ms)

