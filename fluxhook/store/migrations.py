"""The one step that brings what older releases kept in Redis into today's shape (docs/operating.md, Upgrading):
every worker runs it as it starts, before it takes work, and ``fluxhook migrate`` runs it by hand. Once it ran,
``Keys.schema`` holds ``SCHEMA_VERSION`` and a later run is one read.

What it rewrites, ``BATCH`` at a time, each change made only if what it read still holds (so a run cut short, or
one beside another, changes nothing twice):

- the jobs still queued in a line of a release before fair share (``Keys.legacy_line``) join today's line of their
  pool (the default pool's, for a pool no longer configured), as the admin owner's;
- the jobs still waiting for a thumbnail task of a release that made thumbnails in a task of their own (its
  work line, those being moved from it, its RQ queue) join the download line: their download task, finding
  the job stored without its thumbnail, makes it;
- a slot taken before accounts were kept (none recorded in ``Keys.legacy_slot_accounts``) is given the first account,
  which sends its task, and moved into its slots if that is not ``default``; one without an owner is the admin's;
- a slot holder's account, owner and charge, kept in three hashes before ``Keys.slot_holders``, become its one entry
  there, and the owners kept of the jobs in line go (a line's member names it);
- the clock of the slots' turns, of each kind of work and of each budget limit's turns to go alone, kept in a key of
  its own before, moves into the field ``owners.CLOCK`` of its passes (the later of the two, should a process of this
  release have given turns already); the owners' estimates of slot time move beside the slots' passes
  (``owners.estimate_field``; one this release learned already stands);
- a job with a BFL task and no account is given the first account, which its polls and callbacks go through;
- BFL's delivery URLs (``SEALED_FIELDS``) and callback bodies kept in the clear are sealed, and a body kept for a
  job is said on its record (``EARLY_KEPT``), where today's submission looks before it takes one;
- a tracked job leaves the task index of a release that tracked a task once (``Keys.bfl_task``) for today's, one job
  per owner (``Keys.bfl_trackers``), and a callback body kept for a task nobody tracked (the static URL's) becomes
  the mark today's release keeps instead (``KeptCallbacks.mark_reported``);
- a job whose submission's answer never came, which older releases kept ``queued`` (holding its slot) until BFL
  named its task, is ``submitted`` without its task as today's release keeps it, so it is never sent again (today's
  sweep would put a queued one back in line, and BFL may have its task);
- the check tasks an older release queued in RQ (``LEGACY_CHECK_QUEUE``) are dropped: today's sweep puts each job in
  the check line once its claim lapses;
- a notification message waiting for an attempt where an older release kept it (its retries' ``Keys.messages_due``,
  its notify work line and what was being moved from it into RQ) is due in ``Keys.notify_due`` when it was due (at
  once if in line or being moved), where today's notifiers take every attempt (an RQ task of it still queued puts it
  there as it runs: ``worker/notify.py``);
- a notification attempt in flight that an older release noted in a set of its own (``Keys.legacy_notify_sending``)
  is noted as today's take notes one (``m:<member>`` in ``Keys.notify_busy``, its lease), its message due at its
  lease: its process dead, a take finds it lapsed and gives its room back; and every attempt noted so whose lease
  lapsed and whose message is not due (an older release's take, which reads no note, took it again and ended it) has
  its room given back, which no take would.

Left as it is: older releases' note of today's kinds' work being moved into RQ (``Keys.legacy_work_moving``), unread,
a few moves at most, each job held by its lease in the due index as well.

One process migrates at a time (``Keys.schema_lock``); another waits until it is done.
"""

from __future__ import annotations

import secrets
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import cast

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job as RQJob

from fluxhook.core.accounts import DEFAULT_ACCOUNT, DEFAULT_POOL, pools
from fluxhook.core.bfl_limits import TASK_DEADLINE
from fluxhook.core.config import Config
from fluxhook.core.heartbeats import beating
from fluxhook.core.holds import MIGRATION_LOCK_SECONDS
from fluxhook.core.job import QUEUED, SEALED_FIELDS, SUBMITTED
from fluxhook.core.signing import Sealer
from fluxhook.store.deliveries import IN_FLIGHT, notify_member
from fluxhook.store.jobs import JobStore, Locks
from fluxhook.store.kept_callbacks import KeptCallbacks
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import ADMIN_OWNER, CLOCK, estimate_field, owner_of
from fluxhook.store.scripts import LuaScript, text
from fluxhook.store.wakes import push
from fluxhook.store.work_lines import DOWNLOAD
from fluxhook.store.work_lines import KINDS as WORK_KINDS

# The shape this release keeps; each migration that changes it raises it by one.
SCHEMA_VERSION = 10
# What a release that made thumbnails in a task of their own kept: a work line of that kind and an RQ queue.
LEGACY_THUMBNAIL_KIND = "thumbnail"
LEGACY_THUMBNAIL_QUEUE = Queue.redis_queue_namespace_prefix + "fluxhook-thumbnails"
LEGACY_THUMBNAIL_TASK = "thumbnail-"
LEGACY_NOTIFY_KIND = "notify"
# The RQ queue of the sweep's checks of a release that ran them as RQ tasks.
LEGACY_CHECK_QUEUE = "fluxhook-control"
# Records (or jobs of an old line) read and rewritten per round trip.
BATCH = 500
# How often a process waiting for another's migration looks whether it is done.
WAIT_INTERVAL = 0.5


@dataclass(frozen=True)
class Migrated:
    """What one run did; ``ran`` False: the data was in today's shape already, and nothing was read but that."""

    ran: bool = False
    lines: int = 0  # jobs moved from an old line into today's
    slots: int = 0  # slots given their account
    holders: int = 0  # slot holders given their one entry
    clocks: int = 0  # schedulers' clocks and the slot-time estimates moved beside their passes
    accounts: int = 0  # jobs given their task's account
    sealed: int = 0  # values sealed: delivery URLs and callback bodies
    tracks: int = 0  # tracked jobs moved to their owner's place in the task's trackers, and kept bodies made marks
    uncertain: int = 0  # jobs awaiting BFL's word on their task moved from queued to submitted
    messages: int = 0  # notification messages moved to today's due set
    attempts: int = 0  # notification attempts of an older release noted as today's, or lapsed given their room back
    checks: int = 0  # check tasks of an older release dropped from RQ


def migrate(connection: Redis, config: Config, *, again: bool = False) -> Migrated:
    """Bring what older releases kept into today's shape, once: one read when it already is; while another process
    migrates, wait for it. ``again``: run every step even though it ran (a process of an older release still
    running then has written since)."""
    if not again and is_current(connection):
        return Migrated()
    locks, lock_token = Locks(connection), secrets.token_hex(8)
    while not locks.acquire(KEYS.schema_lock, lock_token, MIGRATION_LOCK_SECONDS):
        time.sleep(WAIT_INTERVAL)  # another process migrates: nothing to wait on but its end
    try:
        if not again and is_current(connection):
            return Migrated()  # done by another before this process took the lock
        with _lock_renewed(locks, lock_token):
            done = _Migration(connection, config).run()
        connection.set(KEYS.schema, SCHEMA_VERSION)
        return done
    finally:
        locks.release(KEYS.schema_lock, lock_token)


def is_current(connection: Redis) -> bool:
    """Whether what Redis keeps is in this release's shape (the migration ran): one read."""
    version = connection.get(KEYS.schema)
    return version is not None and int(version) >= SCHEMA_VERSION


def _lock_renewed(locks: Locks, lock_token: str) -> AbstractContextManager[None]:
    """While the body runs, a thread of its own renews the lock every ``MIGRATION_LOCK_SECONDS`` / 3 s while this process holds
    it. Steps change nothing twice, so a lock lapsed meanwhile (Redis unreachable a while) costs only work done again."""

    def renew() -> bool:
        if locks.holder(KEYS.schema_lock) == lock_token:
            locks.connection.expire(KEYS.schema_lock, MIGRATION_LOCK_SECONDS)
        return True

    return beating(MIGRATION_LOCK_SECONDS / 3, renew, "migration-lock", missed=(RedisError,))


class _Migration:
    """One run of every step on one connection (what each step does: the module's docstring)."""

    def __init__(self, connection: Redis, config: Config):
        self.connection = connection
        self.pools = pools(config.pooled_limits)
        # The account every fallback of the releases that kept none used: the first configured.
        self.account = config.accounts[0].name
        self.sealer = Sealer(config.secret_keys)
        self._lines = LuaScript(connection, "migrate_lines")
        self._slots = LuaScript(connection, "migrate_slots")
        self._holders = LuaScript(connection, "migrate_holders")
        self._clock = LuaScript(connection, "migrate_clock")
        self._record = LuaScript(connection, "migrate_record")
        self._kept = LuaScript(connection, "migrate_kept")
        self._tracks = LuaScript(connection, "migrate_tracks")
        self._attempts = LuaScript(connection, "migrate_attempts")
        self.marks = KeptCallbacks(connection, self.sealer)
        self.jobs = JobStore(connection, pools=self.pools, accounts=tuple(a.name for a in config.accounts),
                             sealer=self.sealer)

    def run(self) -> Migrated:
        lines, slots = self.old_lines() + self.old_thumbnails(), self.old_slots()
        holders, clocks = self.slot_holders(), self.clocks() + self.estimates()
        accounts, sealed = self.records()
        return Migrated(ran=True, lines=lines, slots=slots, holders=holders, clocks=clocks, accounts=accounts,
                        sealed=sealed + self.kept_bodies(), tracks=self.trackers() + self.kept_for_tasks(),
                        uncertain=self.uncertain_sends(), messages=self.old_messages(), attempts=self.lapsed_attempts(),
                        checks=self.old_checks())

    def old_lines(self) -> int:
        moved = 0
        for old in map(text, self.connection.scan_iter(match=KEYS.legacy_line("*"), count=BATCH)):
            pool = old[len(KEYS.legacy_line("")):]
            line = KEYS.line(pool if pool in self.pools else DEFAULT_POOL)
            while ids := [text(i) for i in self.connection.zrange(old, 0, BATCH - 1)]:
                moved += int(self._lines([old, line, KEYS.legacy_fair_owners, *map(KEYS.job, ids)],
                                         [ADMIN_OWNER, *ids]))
        return moved

    def old_thumbnails(self) -> int:
        moved = 0
        line, moving = KEYS.work_line(LEGACY_THUMBNAIL_KIND), KEYS.legacy_work_moving(LEGACY_THUMBNAIL_KIND)
        while members := [text(m) for m in self.connection.zrange(line, 0, BATCH - 1)]:
            pipe = self.connection.pipeline(transaction=True)
            pipe.zrem(line, *members)
            moved += self._join_download_line(members, pipe)
        while members := [text(m) for m in self.connection.hkeys(moving)[:BATCH]]:
            pipe = self.connection.pipeline(transaction=True)
            pipe.hdel(moving, *members)
            moved += self._join_download_line(members, pipe)
        while tasks := [text(t) for t in self.connection.lrange(LEGACY_THUMBNAIL_QUEUE, 0, BATCH - 1)]:
            ids = [t.removeprefix(LEGACY_THUMBNAIL_TASK) for t in tasks]
            read = self.connection.pipeline(transaction=False)
            for job_id in ids:
                read.hget(KEYS.job(job_id), "key_id")
            owners = [owner_of(text(key_id) if key_id else None) for key_id in read.execute()]
            pipe = self.connection.pipeline(transaction=True)
            pipe.ltrim(LEGACY_THUMBNAIL_QUEUE, len(tasks), -1)
            pipe.delete(*(RQJob.key_for(t) for t in tasks))
            moved += self._join_download_line([f"{o}:{j}" for o, j in zip(owners, ids, strict=True)], pipe)
        return moved

    def _join_download_line(self, members: list[str], pipe) -> int:
        """Add ``members`` to the download line on ``pipe`` (a MULTI that takes them from where they were), wake a
        dispatcher's feed, and run it; how many."""
        for item in members:
            pipe.zadd(KEYS.work_line(DOWNLOAD), {item: 0}, nx=True)
        push(pipe, KEYS.work_added)
        pipe.execute()
        return len(members)

    def old_slots(self) -> int:
        given = 0
        for pool in self.pools:
            old, new = KEYS.slots(pool, DEFAULT_ACCOUNT), KEYS.slots(pool, self.account)
            # A pool's slots are at most an account's max_active: read at once.
            ids = [text(i) for i in self.connection.zrange(old, 0, -1)]
            for start in range(0, len(ids), BATCH):
                kept = [KEYS.legacy_slot_accounts, KEYS.legacy_fair_owners, KEYS.fair_held,
                        KEYS.slot_holders, KEYS.slot_counts]
                given += int(self._slots([old, new, *kept], [self.account, ADMIN_OWNER, *ids[start:start + BATCH]]))
        return given

    def slot_holders(self) -> int:
        moved = 0
        legacy = [KEYS.legacy_slot_accounts, KEYS.legacy_fair_owners, KEYS.legacy_fair_charges]
        # Slot holders are at most the accounts' max_active: read at once.
        jobs = [text(j) for j in self.connection.hkeys(legacy[0])]
        for start in range(0, len(jobs), BATCH):
            moved += int(self._holders([*legacy, KEYS.slot_holders], [ADMIN_OWNER, *jobs[start:start + BATCH]]))
        self.connection.delete(KEYS.legacy_fair_owners, KEYS.legacy_fair_charges)
        return moved

    def clocks(self) -> int:
        pairs = [(KEYS.legacy_fair_clock, KEYS.fair_passes)]
        pairs += [(KEYS.legacy_work_clock(kind), KEYS.work_passes(kind)) for kind in WORK_KINDS]
        # A budget limit's turns (one per reservations key: the day's, each key's and each account's).
        suffix = KEYS.legacy_budget_clock("")
        for old in map(text, self.connection.scan_iter(match=KEYS.legacy_budget_clock(KEYS.budget_held + "*"),
                                                        count=BATCH)):
            pairs.append((old, KEYS.budget_turns(old.removesuffix(suffix))))
        return sum(int(self._clock([old, passes], [CLOCK])) for old, passes in pairs)

    def estimates(self) -> int:
        legacy = KEYS.legacy_fair_estimates
        kept = [(text(field), value) for field, value in self.connection.hgetall(legacy).items()]
        pipe = self.connection.pipeline(transaction=True)
        for field, value in kept:
            slots_key, _, owner = field.rpartition("|")
            pipe.hsetnx(KEYS.fair_passes, estimate_field(slots_key, owner), value)
        pipe.delete(legacy)
        pipe.execute()
        return len(kept)

    def records(self) -> tuple[int, int]:
        """Give each job with a task its account, and seal its delivery URLs kept in the clear: (accounts, sealed)."""
        done = {"account": 0, "sealed": 0}
        after = "-"
        while ids := [text(i) for i in self.connection.zrangebylex(KEYS.all_jobs, after, "+", start=0, num=BATCH)]:
            after = f"({ids[-1]}"
            read = self.connection.pipeline(transaction=False)
            for job_id in ids:
                read.hmget(KEYS.job(job_id), "bfl_id", "account", *SEALED_FIELDS)
            write, kinds = self.connection.pipeline(transaction=False), []
            for job_id, values in zip(ids, read.execute(), strict=True):
                for kind, changes in self._changes(*(text(v or b"") for v in values)).items():
                    self._record([KEYS.job(job_id)], changes, client=write)
                    kinds.append(kind)
            for kind, count in zip(kinds, write.execute(), strict=True):
                done[kind] += int(count)
        return done["account"], done["sealed"]

    def _changes(self, bfl_id: str, account: str, *kept: str) -> dict[str, list[str]]:
        """A record's changes by kind, as ``migrate_record.lua`` takes them: field, value read, value to set."""
        changes: dict[str, list[str]] = {}
        if bfl_id and not account:
            changes["account"] = ["account", "", self.account]
        for field, value in zip(SEALED_FIELDS, kept, strict=True):
            if value and not Sealer.is_sealed(value):
                changes.setdefault("sealed", []).extend([field, value, self.sealer.seal_text(value)])
        return changes

    def kept_bodies(self) -> int:
        sealed, prefix = 0, KEYS.kept_for_job("")
        for key in self.connection.scan_iter(match=KEYS.kept_for_job("*"), count=BATCH):
            self.marks.flag(text(key)[len(prefix):])
            body = cast(bytes | None, self.connection.get(key))  # the connections never decode: replies are bytes
            if body and not Sealer.is_sealed(body):
                sealed += int(self._kept([key], [body, self.sealer.seal(body)]))
        return sealed

    def trackers(self) -> int:
        moved = 0
        for key in map(text, self.connection.scan_iter(match=KEYS.bfl_task("*"), count=BATCH)):
            job_id = text(self.connection.get(key) or b"")
            bfl_id, pool, key_id = (text(v or b"") for v in
                                    self.connection.hmget(KEYS.job(job_id), "bfl_id", "pool", "key_id"))
            if job_id and bfl_id and not pool and key == KEYS.bfl_task(bfl_id):
                moved += int(self._tracks([key, KEYS.bfl_trackers(bfl_id)], [job_id, owner_of(key_id or None)]))
        return moved

    def kept_for_tasks(self) -> int:
        marked = 0
        prefix = KEYS.legacy_kept_for_task("", "")
        for key in map(text, self.connection.scan_iter(match=KEYS.legacy_kept_for_task("*", "*"), count=BATCH)):
            account, _, bfl_id = key[len(prefix) - 1:].partition(":")
            self.marks.mark_reported(account, bfl_id)
            marked += int(self.connection.delete(key))
        for key in self.connection.scan_iter(match=KEYS.legacy_kept_of_account("*"), count=BATCH):
            self.connection.delete(key)
        return marked

    def old_messages(self) -> int:
        moved = 0
        line, moving = KEYS.work_line(LEGACY_NOTIFY_KIND), KEYS.legacy_work_moving(LEGACY_NOTIFY_KIND)
        for source, read in ((KEYS.messages_due, self._scored), (line, self._scored), (moving, self._hash)):
            while items := read(source):
                hosts = self.connection.pipeline(transaction=False)
                for item in items:
                    hosts.hget(KEYS.message(item[0].partition(":")[2]), "host")
                pipe = self.connection.pipeline(transaction=True)
                (pipe.hdel if source == moving else pipe.zrem)(source, *(item[0] for item in items))
                for (old, at), host in zip(items, hosts.execute(), strict=True):
                    owner, _, message_id = old.partition(":")
                    if host is not None:  # its message is gone with its job otherwise
                        pipe.zadd(KEYS.notify_due, {notify_member(owner, text(host), message_id): at}, nx=True)
                        moved += 1
                pipe.execute()
        return moved

    def lapsed_attempts(self) -> int:
        keys = [KEYS.notify_due, KEYS.notify_busy, KEYS.notify_parked, KEYS.legacy_notify_sending]
        given = 0
        while (done := int(self._attempts(keys, [repr(time.time()), BATCH]))) > 0:
            given += done
        now = time.time()
        lapsed = [text(field).removeprefix(IN_FLIGHT) for field, lease in
                  self.connection.hscan_iter(KEYS.notify_busy, match=f"{IN_FLIGHT}*", count=BATCH)
                  if float(lease) <= now]
        for start in range(0, len(lapsed), BATCH):
            given += int(self._attempts(keys, [repr(now), 0, *lapsed[start:start + BATCH]]))
        return given

    def old_checks(self) -> int:
        queue = Queue(LEGACY_CHECK_QUEUE, connection=self.connection)
        dropped = queue.count
        if dropped:
            queue.empty()
        return dropped

    def _scored(self, key: str) -> list[tuple[str, float]]:
        # A work line's members are all scored 0: due at once, as they were.
        scored = cast(list[tuple[bytes, float]], self.connection.zrange(key, 0, BATCH - 1, withscores=True))
        return [(text(m), float(score) or time.time()) for m, score in scored]

    def _hash(self, key: str) -> list[tuple[str, float]]:
        return [(text(m), time.time()) for m in self.connection.hkeys(key)[:BATCH]]

    def uncertain_sends(self) -> int:
        moved, after = 0, "-"
        queued = KEYS.status(QUEUED)
        while ids := [text(i) for i in self.connection.zrangebylex(queued, after, "+", start=0, num=BATCH)]:
            after = f"({ids[-1]}"
            read = self.connection.pipeline(transaction=False)
            for job_id in ids:
                read.hmget(KEYS.job(job_id), "uncertain_at", "bfl_id")
            for job_id, (since, bfl_id) in zip(ids, read.execute(), strict=True):
                if since and not bfl_id:
                    at = float(since)
                    # Its reservation lapses with its lease: the bound is not counted as spent for these few.
                    moved += bool(self.jobs.transition(job_id, SUBMITTED, only_from=(QUEUED,), submitted_at=at,
                                                       due=at + TASK_DEADLINE))
        return moved

