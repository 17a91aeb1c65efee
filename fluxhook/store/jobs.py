"""Job records in Redis: create, read, list, delete, the one place statuses change, and the locks of a job's steps
(who is downloading or submitting it right now).

A job is a hash (``Keys.job``); ``Keys.bfl_task`` maps BFL's task id to it; ``Keys.all_jobs`` and ``Keys.status`` are
lexically ordered sets of ids (ids sort by creation time) for newest-first listing; ``Keys.due`` orders active jobs by
when the fallback sweep should next look at them. Every status change is one Lua script (``lua/job_transition.lua``), so
no duplicate or late report, from whichever process, moves a job out of a terminal status; with the change come its new
status's consequences (``job.consequences``: the BFL slot freed, the notification outbox) and the caller's ``effects``.

A lock (``Lock``) is taken or freed with a change, or on its own (``Locks``); either way it expires by itself, so a
process that dies frees it.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, NamedTuple, Sequence

from redis import Redis

from fluxhook.core import job as st
from fluxhook.core.accounts import DEFAULT_ACCOUNT, POOLS
from fluxhook.core.errors import InvalidRequest, SearchTooLong
from fluxhook.core.holds import DEFAULT_TTL
from fluxhook.core.job import (
    COUNTERS,
    ENDED_DROPS,
    HOLD_KEEPS,
    SEALED_FIELDS,
    WATCHED_UNTIL,
    Job,
    is_job_id,
    job_id_floor,
)
from fluxhook.core.job_filters import EVERY_JOB, TEXT_WINDOW, JobFilter
from fluxhook.core.live import Shown, shown
from fluxhook.core.signing import Sealer
from fluxhook.store.effects import (
    AddTimelineEntry,
    AddWork,
    Effect,
    Handed,
    Tallies,
    encode,
    handed,
    place,
    split,
)
from fluxhook.store.idempotency import Hold, key_taken, naming_args, record_keys
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import ADMIN_OWNER, DEFAULT_WEIGHT, owner_of
from fluxhook.store.prompt_cache import PromptCache
from fluxhook.store.records import announced, encode_fields, job_from_hash, new_fields
from fluxhook.store.scripts import LuaScript, decode_hash, text, time_score
from fluxhook.store.search_matches import ENTRY_SECONDS, MARGIN_SECONDS, Matches, SearchMatches


class Lock(NamedTuple):
    """A Redis key set (if free) together with a status change, so the change and the claim are one step."""

    key: str
    value: str
    ttl: int


class Locks:
    """Locks on one Redis connection, taken and freed on their own."""

    def __init__(self, connection: Redis):
        self.connection = connection
        self._release_own = LuaScript(connection, "lock_release")

    def acquire(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` to ``value`` for ``ttl`` seconds if nobody holds it; whether it was free."""
        return bool(self.connection.set(key, value, nx=True, ex=ttl))

    def holder(self, key: str) -> str | None:
        """The value ``key`` is held with, or None if free."""
        value = self.connection.get(key)
        return None if value is None else text(value)

    def relabel(self, key: str, value: str, pipeline) -> None:
        """On ``pipeline``: hold ``key`` with ``value`` from now on, for the rest of its life, only if it is held."""
        pipeline.set(key, value, xx=True, keepttl=True)

    def seconds_left(self, key: str) -> float:
        """Seconds until ``key`` lapses; 0 if free."""
        return max(0.0, self.connection.pttl(key) / 1000)

    def release(self, key: str, value: str | None = None) -> bool:
        """Free ``key``: whoever holds it, or (``value`` given) only if it is still held with ``value``. Whether
        it was freed."""
        if value is None:
            return bool(self.connection.delete(key))
        return bool(self._release_own([key], [value]))


@dataclass(frozen=True)
class Take:
    """A key whose value a transition takes (reads and deletes) with the move: only when the record's ``flag`` field
    says one was kept, so a move with none kept costs no command. The flag goes with the move."""

    key: str
    flag: str


@dataclass(frozen=True)
class Terms:
    """What a transition asks beyond its statuses: a (field, value) that must hold, the counter it adds one to
    (``attempts.<count>``), a lock it takes with the move, a lock it frees with the move if still held with its
    value (freed without a look once the move is made: it guarded the move, so name only a lock nobody else may hold
    while the job is in a status the move leaves, as a submission's), and a key whose value it takes (reads
    and deletes) with the move (``take``: ``Change.taken``). ``out_of_line``: the caller knows the job is in no line
    (a dispatch took it out to give it a slot), so its move out of ``queued`` looks for no place in one."""

    if_equal: tuple[str, str | None] | None = None
    count: str | None = None
    lock: Lock | None = None
    unlock: Lock | None = None
    take: Take | None = None
    # Field, value pairs that must read as given (what a change was worked out from: ``show_running``).
    if_same: tuple[str, ...] | None = None
    out_of_line: bool = False
    # The record as the step left it, in its answer (``Change.record``): a command in the step, not a read after it.
    read_back: bool = False
    # BFL may still run the task of the job that ends (``job.consequences``): a ``submitted`` one holding a slot
    # keeps it, stays due on its poll schedule and keeps what its polls need (``HOLD_KEEPS``), until ``let_go``.
    task_runs: bool = False
    # No move: the ended job gives back the slot it kept so (``let_go``).
    give_back: bool = False


NO_TERMS = Terms()
_GIVE_BACK = st.Consequences(free_slot=True, leave_line=False, terminal=False)
# A term passed among the fields would be written to the job's record as one: refused instead (no job field is
# named so).
_TERM_NAMES = frozenset(term.name for term in fields(Terms))


@dataclass(frozen=True)
class Change:
    """What a transition did: true if the job moved."""

    moved: bool
    # The job's status before ('' if there is no such job).
    previous: str
    # Whether the transition's ``lock`` was free and is now held.
    locked: bool = False
    # The value of the key the transition took (``Terms.take``), None if there was none (or it did not move).
    taken: bytes | None = None
    # The work its effects took for RQ at once (``AddWork``), for the caller to queue (``effects.Handed``).
    handed: Handed = field(default_factory=dict)
    # The job as the step left it (``Terms.read_back``), None if not asked for (or it did not move).
    record: Job | None = None
    # Whether the step gave a BFL slot back.
    freed: bool = False

    def __bool__(self) -> bool:
        return self.moved


@dataclass(frozen=True)
class Creation:
    """A new job's record as ``lua/job_record.lua`` makes it: the KEYS it writes (its spec counts them from 1) and
    its ARGV (the spec, then the record's fields)."""

    keys: list[str]
    args: list[str]


class JobStore:
    """Job records on one Redis connection.

    With ``ttl`` (seconds), records expire by themselves: a backstop behind the retention task,
    so abandoned data cannot pile up whatever happens to the scheduler. Timelines live as long.
    """

    def __init__(self, connection: Redis, ttl: int | None = None, keys: Keys = KEYS, pools: tuple[str, ...] = POOLS,
                 clock: Callable[[], float] = time.time, accounts: tuple[str, ...] = (DEFAULT_ACCOUNT,),
                 sealer: Sealer | None = None, tallies: Tallies | None = None):
        self.connection = connection
        # Where the metrics' and hourly counts of a transition go once it moved (the store's, shared by its parts).
        self.tallies = tallies or Tallies(connection, keys)
        # Seals BFL's delivery URLs (``SEALED_FIELDS``) as they are kept; None keeps them as given (a bare store,
        # of a test or a tool: the service's own always has one, from SECRET_KEY).
        self.sealer = sealer
        # What a change of status is stamped with, and a slot's time measured by (tests run it by hand).
        self.clock = clock
        self.ttl = ttl
        self.keys = keys
        # The slot pools (``limits.pools``): a job leaving them gives its slot or its place in line back.
        self.pools = pools
        # Every account's slots of every pool: a job holds at most one of them.
        self.accounts = accounts
        self.slot_keys = [keys.slots(pool, account) for account in accounts for pool in pools]
        self.timeline_ttl = ttl or DEFAULT_TTL
        self._transition = LuaScript(connection, "job_transition")
        self._create = LuaScript(connection, "job_create")
        self._count = LuaScript(connection, "job_count")
        self._attempt = LuaScript(connection, "job_attempt")
        self._delete = LuaScript(connection, "job_delete")
        self._sweep_index_add = LuaScript(connection, "sweep_index_add")
        self._claim_due = LuaScript(connection, "claim_due")
        self._confirm_claim = LuaScript(connection, "confirm_claim")
        self._set_if_exists = LuaScript(connection, "job_set_if_exists")
        self._prompts = LuaScript(connection, "job_prompts")
        self.prompt_cache = PromptCache()
        self._chars_read = threading.local()
        self.search_matches = SearchMatches()

    def create(self, job: Job, *, due: float | None = None, naming: Hold | None = None) -> tuple[Job, bool]:
        """Store a new job (due for the sweep at ``due``, if given); for a ``bfl_id`` its owner (app key, or the admin)
        already tracks, return that job instead: a task is tracked once per owner. Returns (job, created). With
        ``naming``, the Idempotency-Key's record names the job in the same step, and nothing is made when that key is
        another request's now (``key_taken``). A queued job to be sent is made with its place in line instead
        (``creation``, ``Slots.join``)."""
        replace = False
        while True:
            made = self.creation(job, due=due, naming=naming, replace=replace)
            stored = self._create(made.keys, made.args)
            if stored is None:
                raise key_taken()
            stored_id = text(stored)
            if stored_id == job.id:
                return job, True
            existing = self.get(stored_id)
            if existing is not None:
                return existing, False
            replace = True  # the index outlived its job: this job replaces it there

    def creation(self, job: Job, *, due: float | None = None, naming: Hold | None = None,
                 replace: bool = False, waiting: AddTimelineEntry | None = None) -> Creation:
        """What ``lua/job_record.lua`` makes the new job's record of (see ``create``), for a script to run;
        ``waiting``: the timeline entry a job made in line gets with what holds it back (``Slots.join``)."""
        fields = encode_fields(self._sealed(new_fields(job)))
        k = self.keys
        keys: list[str] = []
        indexes = [k.all_jobs, *self._indexes(job.status, job.model, job.key_id, job.batch_id)]
        spec: dict[str, Any] = {
            "id": job.id, "bfl_id": job.bfl_id or "", "due": time_score(due), "ttl": self.ttl or "", "model": job.model or "",
            "record": place(keys, k.job(job.id)), "indexes": [place(keys, index) for index in indexes],
            "due_index": place(keys, k.due), "models": place(keys, k.models), "replace": replace,
            "sweep_added": place(keys, k.sweep_added)}
        if not job.batch_id:
            # Announced as made (the owner's streams show it); a batch's items are not, one by one: every web process
            # would read 10,000 announcements for one request. Its stream shows the batch; each item, once it moves.
            spec["channel"] = k.job_changes
        if job.bfl_id and job.tracked:
            spec["trackers"], spec["owner"] = place(keys, k.bfl_trackers(job.bfl_id)), owner_of(job.key_id)
        elif job.bfl_id:
            spec["bfl_task"] = place(keys, k.bfl_task(job.bfl_id))
        if job.deadline is not None:
            spec["deadlines"], spec["deadline"] = place(keys, k.deadlines), time_score(job.deadline)
        if naming is not None:
            record, callers = record_keys(k, naming.use)
            spec["hold"] = {"record": place(keys, record), "callers": place(keys, callers), **naming_args(naming)}
        if waiting is not None:
            [spec["waiting"]] = encode([waiting], k, keys, self.timeline_ttl, self.clock())
        return Creation(keys, [json.dumps(spec), *fields])

    def get(self, job_id: str) -> Job | None:
        if not is_job_id(job_id):
            return None
        data = self.connection.hgetall(self.keys.job(job_id))
        return self._opened(job_from_hash(decode_hash(data))) if data else None

    def get_many(self, job_ids: Sequence[str]) -> builtins.list[Job | None]:
        """The jobs with these ids, each None if there is none: one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(self.keys.job(job_id))
        return [self._opened(job_from_hash(decode_hash(d))) if d else None for d in pipe.execute()]

    def get_counting(self, job_id: str, counter: str, status: str) -> Job | None:
        """The job with this id, or None; one more attempt of ``counter`` (``attempts.<counter>``) counted in it and
        in what is read if it is ``status``: a task's first read and the count of its attempt, in one step."""
        if counter not in COUNTERS:
            raise ValueError(counter)
        if not is_job_id(job_id):
            return None
        data = self._attempt([self.keys.job(job_id)], [counter, status])
        return self._listed(data) if data else None

    def _listed(self, flat: list) -> Job:
        """The job of a record a script read (HGETALL's list of field, value)."""
        return self._opened(job_from_hash(decode_hash(dict(zip(flat[::2], flat[1::2], strict=True)))))

    def _sealed(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self.sealer is None or not any(fields.get(name) for name in SEALED_FIELDS):
            return fields
        return {name: self.sealer.seal_text(value) if name in SEALED_FIELDS and value else value
                for name, value in fields.items()}

    def _opened(self, job: Job) -> Job:
        if self.sealer is None or not any(getattr(job, name) for name in SEALED_FIELDS):
            return job
        opened: dict[str, Any] = {name: self.sealer.open_text(getattr(job, name)) if getattr(job, name) else None
                                  for name in SEALED_FIELDS}
        return replace(job, **opened)

    def _kept_as(self, if_equal: tuple[str, str | None]) -> list[str | None]:
        """The (field, value) that must hold as the Lua compares it: the field, then each way the value may be kept."""
        name, value = if_equal
        if self.sealer is None or name not in SEALED_FIELDS or not value:
            return [name, value]
        return [name, *self.sealer.sealings(value)]

    def get_by_bfl_id(self, bfl_id: str) -> Job | None:
        """The job fluxhook submitted as BFL task ``bfl_id``, or None (a tracked task's jobs: ``trackers``)."""
        job_id = self.connection.get(self.keys.bfl_task(bfl_id))
        return self.get(text(job_id)) if job_id else None

    def trackers(self, bfl_id: str) -> list[Job]:
        """The jobs tracking BFL task ``bfl_id``, one per owner that tracks it."""
        ids = sorted(text(i) for i in self.connection.hvals(self.keys.bfl_trackers(bfl_id)))
        return [job for job in map(self.get, ids) if job is not None and job.bfl_id == bfl_id]

    def transition(self, job_id: str, new_status: str, *, only_from: tuple[str, ...] | None = None,
                   due: float | None = None, due_if_watched: float | None = None, terms: Terms = NO_TERMS,
                   effects: Sequence[Effect] = (), **fields: Any) -> Change:
        """Move the job to ``new_status`` and set ``fields``, atomically; a false Change if the rules forbid it.

        ``only_from`` narrows the statuses it may move from; ``due`` is when the sweep should next look at the
        job (terminal jobs are never due), ``due_if_watched`` instead when someone watches it (``store/watching.py``) at
        the move. ``terms``: what the move asks beyond its statuses (``Terms``); the ``effects`` happen in the same
        step if the job moved (and took the lock, if one is named).
        """
        if _TERM_NAMES & fields.keys():
            raise TypeError(f"{sorted(_TERM_NAMES & fields.keys())} belong in terms=Terms(...), not the job's fields")
        allowed = tuple(s for s in st.sources_for(new_status) if only_from is None or s in only_from)
        return self._apply(job_id, new_status, allowed, fields, terms, due, effects, due_if_watched=due_if_watched)

    def let_go(self, job_id: str) -> Change:
        """Give back the slot an ended job still holds for the task BFL ran on (``Terms.task_runs``), with what the
        record kept for the sweep's polls of it; never due again, and the job's own record otherwise untouched.
        ``Change.freed``: whether it held one (false Change: the job is gone or has not ended)."""
        return self._apply(job_id, "", tuple(st.TERMINAL), dict.fromkeys(HOLD_KEEPS), Terms(give_back=True), None, ())

    def update(self, job_id: str, *, only_in: tuple[str, ...] = st.ACTIVE, due: float | None = None,
               due_if_watched: float | None = None, effects: Sequence[Effect] = (), **fields: Any) -> bool:
        """Set ``fields`` (and the ``due`` time, ``due_if_watched`` instead when someone watches the job, as for
        ``transition``) if the job's status is one of ``only_in`` (any non-terminal one by default); the ``effects``
        happen in the same step, if it was. No ``AddWork``: the work it may take at once comes back in a ``Change``
        (``transition``, ``Effects.apply``), which this answer has no room for."""
        if any(isinstance(effect, AddWork) for effect in effects):
            raise TypeError("AddWork rides with transition() or Effects.apply(), whose answer hands back the work "
                            "taken at once for its caller to queue")
        return self._apply(job_id, "", only_in, fields, NO_TERMS, due, effects, due_if_watched=due_if_watched).moved

    def show_running(self, job_id: str, report: Shown, *, only_in: tuple[str, ...]) -> bool:
        """Record BFL's running ``report`` (its word and progress) as ``live.shown`` says, never backwards, if the
        job's status is one of ``only_in``; False if it is not (or the job is gone).

        Atomic against any report recorded meanwhile (a poll and a callback may cross): the change is written only
        if the job still shows what it was worked out from, else worked out again. Nothing is written when the
        report changes nothing.
        """
        record = self.keys.job(job_id)
        for _ in range(SHOW_ATTEMPTS):
            status, running, word, progress = (text(v) if v is not None else "" for v in self.connection.hmget(
                record, "status", "bfl_running", "bfl_status", "progress"))
            if status not in only_in:
                return False
            # The last running word stands where a Ready that BFL refuted left Pending: the task got that far.
            now = Shown(running or word or None, float(progress) if progress else None)
            new = shown(now, report)
            if new == now and word == new.bfl_status:
                return True
            fields = {"bfl_status": new.bfl_status, "progress": new.progress, "bfl_running": new.bfl_status}
            change = self._apply(job_id, "", only_in, fields, Terms(if_same=(
                "bfl_running", running, "bfl_status", word, "progress", progress)), None, ())
            if change.moved or change.previous not in only_in:
                return change.moved
        return False  # lost the race each time: the next report is recorded

    def _apply(self, job_id: str, new_status: str, allowed: tuple[str, ...], fields: dict[str, Any], terms: Terms,
               due: float | None, effects: Sequence[Effect], due_if_watched: float | None = None) -> Change:
        if terms.count is not None and terms.count not in COUNTERS:
            raise ValueError(terms.count)
        now = self.clock()
        consequences = _GIVE_BACK if terms.give_back else st.consequences(new_status, task_runs=terms.task_runs)
        if consequences.terminal:
            fields.setdefault("completed_at", now)
        keys = [self.keys.job(job_id), self.keys.due, self.keys.outbox]
        words = encode_fields(self._sealed(fields))
        pairs = list(zip(words[0::2], words[1::2], strict=True))
        spec: dict[str, Any] = {
            "id": job_id, "now": repr(now), "to": new_status, "from": list(allowed),
            # The fields with a value are written; those without one are dropped from the record (it reads the same).
            "fields": [word for name, value in pairs if value != "" for word in (name, value)],
            "clear": [name for name, value in pairs if value == ""],
            # Only the keys this move can touch: the indexes of the statuses it may leave and enter.
            "statuses": {name: place(keys, self.keys.status(name)) for name in (*allowed, new_status) if name},
            "terminal": consequences.terminal, "channel": self.keys.job_changes,
            "batch_counts": place(keys, self.keys.batch_counts), "notify_added": place(keys, self.keys.notify_added),
            "sweep_added": place(keys, self.keys.sweep_added),
            **self._given_back(keys, consequences, allowed), **self._terms(keys, terms),
        }
        if announce := announced(words):
            spec["announce"] = announce
        if due is not None:
            spec["due"] = time_score(due)
            if due_if_watched is not None:
                spec["watched"] = {"field": WATCHED_UNTIL, "due": time_score(due_if_watched)}
        if self.ttl:
            # How long its record was made to live: its task's index lives as long, and an ended record keeps its end.
            spec["lives"] = self.ttl
        if fields.get("bfl_id"):
            spec["bfl"] = {"key": place(keys, self.keys.bfl_task(fields["bfl_id"]))}
        in_step, tallied = split(effects)
        spec["effects"] = encode(in_step, self.keys, keys, self.timeline_ttl, now)
        done, previous, locked, taken, *rest = self._transition(keys, [json.dumps(spec, separators=(",", ":"))])
        # Counted as the script does its effects: only with a move, and only with the lock when one is named.
        if done and tallied and ("lock" not in spec or locked):
            self.tallies.add(tallied)
        record = self._listed(rest[1]) if len(rest) > 1 and rest[1] else None
        return Change(bool(done), text(previous), bool(locked), taken, handed(rest[0]) if rest else {}, record,
                      freed=len(rest) > 2 and bool(rest[2]))

    def _given_back(self, keys: list[str], consequences: st.Consequences, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The spec's part of what a move gives back: its slot, its place in line, its wait; and of an ended job, its
        deadline and what its record keeps no longer. Only the keys the move may touch: the slots and lines a job in
        the statuses it may leave can hold (the script touches the job's own)."""
        spec: dict[str, Any] = {}
        if consequences.free_slot:
            spec["slots"] = {account: {pool: place(keys, self.keys.slots(pool, account)) for pool in self.pools}
                             for account in self.accounts}
            spec["slot_counts"] = place(keys, self.keys.slot_counts)
            spec["freed"] = {"key": place(keys, self.keys.slot_freed),
                             "lines": [place(keys, self.keys.line(pool)) for pool in self.pools]}
            spec["fair"] = {"passes": place(keys, self.keys.fair_passes),
                            "weights": place(keys, self.keys.share_weights), "default_weight": DEFAULT_WEIGHT}
        if consequences.leave_line and st.QUEUED in allowed:
            # A line, or the jobs waiting aside (out of line), holds queued jobs only. Its wait, if one is recorded,
            # ends with the move: whatever it waited for, it waits no more.
            spec["lines"] = {pool: place(keys, self.keys.line(pool)) for pool in self.pools}
            spec["aside"], spec["unset"] = place(keys, self.keys.aside), list(WAIT_FIELDS)
            spec["admin"] = ADMIN_OWNER  # the owner of a job without an app key: its member is '<admin>:<job id>'
        if spec:
            spec["held"], spec["routes"] = place(keys, self.keys.fair_held), place(keys, self.keys.routes)
            spec["holders"] = place(keys, self.keys.slot_holders)
        if consequences.hold_slot:
            # Kept, not given back, by a job BFL has: what the sweep's polls of its task need stays with it.
            spec["hold"] = {"keeps": list(HOLD_KEEPS)}
        if consequences is _GIVE_BACK:
            spec["release"] = True
        if consequences.terminal:
            spec["deadlines"], spec["drop"] = place(keys, self.keys.deadlines), list(ENDED_DROPS)
        return spec

    def _terms(self, keys: list[str], terms: Terms) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if terms.if_equal is not None:
            spec["if_equal"] = self._kept_as(terms.if_equal)
        if terms.if_same is not None:
            spec["if_same"] = list(terms.if_same)
        if terms.count is not None:
            spec["count"] = terms.count
        if terms.lock is not None:
            spec["lock"] = {"key": place(keys, terms.lock.key), "value": terms.lock.value, "ttl": terms.lock.ttl}
        if terms.unlock is not None:
            spec["unlock"] = {"key": place(keys, terms.unlock.key), "value": terms.unlock.value}
        if terms.take is not None:
            spec["take"] = {"key": place(keys, terms.take.key), "flag": terms.take.flag}
        if terms.out_of_line:
            spec["out_of_line"] = True
        if terms.read_back:
            spec["read_back"] = True
        return spec

    def claim_due(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` jobs due by ``now``, oldest first, marking each with ``claim`` (a future time): two
        sweeps never take the same job, and one claimed comes due again at ``claim`` if nobody checks it (a lost task)."""
        return [text(i) for i in self._claim_due([self.keys.due], [repr(now), limit, time_score(claim)])]

    def claim_deadlines(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` jobs whose deadline has passed by ``now``, as ``claim_due`` takes due ones: a job taken
        comes due again at ``claim`` unless ``deadline_done`` drops it first (its end was recorded)."""
        return [text(i) for i in self._claim_due([self.keys.deadlines], [repr(now), limit, time_score(claim)])]

    def due_no_more(self, job_id: str) -> None:
        """A job whose record is gone is looked at no more: out of the due index (a move into RQ that took its work from
        a line after its record was deleted made it due, ``lua/work_moves.lua``)."""
        self.connection.zrem(self.keys.due, job_id)

    def deadline_done(self, job_id: str, *, again_at: float | None = None) -> None:
        """The job's deadline needs no more acting on (it ended), or (``again_at``) is looked at again then."""
        if again_at is None:
            self.connection.zrem(self.keys.deadlines, job_id)
        else:
            self._sweep_index_add([self.keys.deadlines, self.keys.sweep_added], [time_score(again_at), job_id])

    def lock_for_send(self, job_id: str, lock: Lock) -> tuple[bool, Job | None, bool]:
        """Take the job's submit ``lock`` if free, and read the job as recorded under it and whether it holds a slot,
        in one round trip: the job its sender checks and sends (None: no such job), and whether it may (a sender that
        stalled past its submission's lease finds its slot given back and the job back in line, by the sweep). (False,
        None, False) when another holds the lock: what was read is not the sender's to use."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.set(lock.key, lock.value, nx=True, ex=lock.ttl)
        pipe.hgetall(self.keys.job(job_id))
        pipe.hexists(self.keys.slot_holders, job_id)
        taken, data, holds = pipe.execute()
        if not taken:
            return False, None, False
        return True, (self._opened(job_from_hash(decode_hash(data))) if data else None), bool(holds)

    def confirm_claim(self, job_id: str, claim: float, hold_until: float) -> bool:
        """Whether this check still owns the job's ``claim`` (then held until ``hold_until``); False if another has it."""
        return bool(self._confirm_claim([self.keys.due], [job_id, time_score(claim), time_score(hold_until)]))

    def claim_notifications(self, now: float, limit: int, claim: float) -> list[str]:
        """Take up to ``limit`` jobs from the notification outbox, as ``claim_due`` takes due ones: a job taken stays
        in the outbox (due again at ``claim``) until ``notifications_queued`` removes it with the enqueue of its task."""
        return [text(i) for i in self._claim_due([self.keys.outbox], [repr(now), limit, time_score(claim)])]

    def model_of(self, job_id: str) -> str | None:
        """The job's model (None: no such job, or none recorded), in one read."""
        return text(self.connection.hget(self.keys.job(job_id), "model")) or None

    def models_of(self, job_ids: Sequence[str]) -> list[str | None]:
        """``model_of`` for each of ``job_ids``, in their order, in one round trip."""
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "model")
        return [text(model) or None for model in pipe.execute()] if job_ids else []

    def traceparent(self, job_id: str) -> str | None:
        """The job's trace context (``Job.traceparent``), in one read; None if it has none."""
        return text(self.connection.hget(self.keys.job(job_id), "traceparent")) or None

    def notifications_queued(self, job_ids: list[str], pipeline=None) -> None:
        """Remove jobs from the outbox: on ``pipeline``, the same MULTI that queues their tasks."""
        (pipeline if pipeline is not None else self.connection).zrem(self.keys.outbox, *job_ids)

    def mark_notified(self, job_id: str, when: float) -> bool:
        """Record that the job's notification was delivered; False if the job is gone. Not an ``update``: the job is
        terminal, and this leaves ``updated_at`` alone, so the job JSON reads the same before and after."""
        return bool(self._set_if_exists([self.keys.job(job_id)], ["notified_at", repr(when)]))

    def mark_app_notified(self, job_id: str, when: float) -> bool:
        """Record that the app's own webhook (BFL-compatible API) got its call; False if the job is gone."""
        return bool(self._set_if_exists([self.keys.job(job_id)], ["app_notified_at", repr(when)]))

    def set_thumbnail(self, job_id: str, key: str) -> bool:
        """Record the stored job's thumbnail; False if the job is gone. Bookkeeping, like ``mark_notified``."""
        return bool(self._set_if_exists([self.keys.job(job_id)], ["thumbnail_key", key]))

    def recorded_waits(self, job_ids: Sequence[str]) -> list[tuple[str | None, float | None]]:
        """The wait each job's record keeps (``Job.waiting_reason``, ``Job.waiting_until``), in one round trip;
        (None, None) for a job without one, or gone."""
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(self.keys.job(job_id), *WAIT_FIELDS)
        return [(text(reason) if reason else None, float(until) if until else None)
                for reason, until in pipe.execute()]

    def due_again(self, job_id: str, when: float) -> None:
        """The sweep looks at the job again at ``when``, if it is due at all (its check's claim holds it there): one
        that a step took out of the due index meanwhile (an ended job whose slot was given back) is not put back, and
        the record is not touched."""
        self.connection.zadd(self.keys.due, {job_id: time_score(when)}, xx=True)

    def due_at(self, job_id: str) -> float | None:
        """When the sweep will next look at the job; None if never."""
        return self.connection.zscore(self.keys.due, job_id)

    def count(self, job_id: str, counter: str) -> int:
        """Add one to ``attempts.<counter>``; -1 if the job is gone (never recreates a deleted job)."""
        if counter not in COUNTERS:
            raise ValueError(counter)
        return int(self._count([self.keys.job(job_id)], [counter]))

    def list(self, filters: JobFilter = EVERY_JOB, limit: int = 50,
             cursor: str | None = None) -> tuple[builtins.list[Job], str | None]:
        """Jobs newest first, those ``filters`` admits, ``limit`` at a time; the cursor is the last id the page read.

        One index alone (or none) is read a page at a time. Otherwise the smallest index is walked between the
        bounds, each batch of ids checked against the other indexes and, for ``account``, against the records; a
        page reads at most ``BOTH_FILTERS_READ`` ids (``RECORDS_READ`` when it reads records), so a rare combination
        costs a bounded page, which may then hold fewer than ``limit`` jobs and still have a cursor. A ``text``
        search walks its matches instead (``_page_of_search``).
        """
        if cursor is not None and not is_job_id(cursor):
            raise InvalidRequest("cursor is not one this service issued")
        top, bottom = self._bounds(filters, cursor)
        indexes = self._indexes(filters.status, filters.model, filters.key_id, filters.batch_id)
        page: builtins.list[str]
        if filters.text is not None:
            page, next_cursor = self._page_of_search(filters, limit, (top, bottom))
        elif top is None:
            page, next_cursor = [], None
        elif len(indexes) > 1 or filters.reads_records:
            page, next_cursor = self._page_of_all(indexes or [self.keys.all_jobs], filters, limit, (top, bottom))
        else:
            index = indexes[0] if indexes else self.keys.all_jobs
            ids = [text(i) for i in self.connection.zrevrangebylex(index, top, bottom, start=0, num=limit + 1)]
            page = ids[:limit]
            next_cursor = page[-1] if len(ids) > limit and page else None
        return [job for job in self.get_many(page) if job is not None], next_cursor

    def _indexes(self, status: str | None, model: str | None, key_id: str | None,
                 batch_id: str | None) -> builtins.list[str]:
        """The indexes of a status, a model, an app key's jobs and a batch's items: those named."""
        indexes = [self.keys.status(status)] if status else []
        if model:
            indexes.append(self.keys.model_jobs(model))
        if key_id:
            indexes.append(self.keys.key_jobs(key_id))
        if batch_id:
            indexes.append(self.keys.batch_jobs(batch_id))
        return indexes

    def _bounds(self, filters: JobFilter, cursor: str | None) -> tuple[str | None, str]:
        """The ZREVRANGEBYLEX bounds of the ids a list may hold (newest first: the top, then the bottom); a None top
        if there are none. Below ``cursor`` and ``until``; from ``since`` (a ``text`` search's window bounds it too:
        ``_page_of_search``)."""
        tops = [cursor] if cursor else []
        if filters.until is not None:
            tops.append(job_id_floor(filters.until))
        bottoms = [job_id_floor(filters.since)] if filters.since is not None else []
        top, bottom = min(tops, default=None), max(bottoms, default=None)
        if top is not None and bottom is not None and top <= bottom:
            return None, "-"
        return (f"({top}" if top else "+"), (f"[{bottom}" if bottom else "-")

    def _page_of_all(self, indexes: builtins.list[str], filters: JobFilter, limit: int,
                     bounds: tuple[str, str]) -> tuple[builtins.list[str], str | None]:
        """Up to ``limit`` ids in every index and admitted by the records' filters, newest first, between ``bounds``:
        the smallest index (between them) walked, the others and the records asked per batch."""
        top, bottom = bounds
        sizes = self.connection.pipeline(transaction=False)
        for index in indexes:
            sizes.zlexcount(index, bottom, top)
        walked, *others = [index for _, index in sorted(zip(sizes.execute(), indexes, strict=True))]
        most, batch = (RECORDS_READ, RECORDS_BATCH) if filters.reads_records else (BOTH_FILTERS_READ, BOTH_FILTERS_BATCH)
        found: builtins.list[str] = []
        start, read = top, 0
        while read < most:
            ids = [text(i) for i in self.connection.zrevrangebylex(walked, start, bottom, start=0,
                                                                    num=min(batch, most - read))]
            if not ids:
                return found, None
            for job_id in self._admitted(ids, others, filters):
                if len(found) == limit:
                    return found, found[-1]  # one more exists: the page is full
                found.append(job_id)
            read += len(ids)
            start = f"({ids[-1]}"
        return found, start[1:]

    def _page_of_search(self, filters: JobFilter, limit: int,
                        bounds: tuple[str | None, str]) -> tuple[builtins.list[str], str | None]:
        """Up to ``limit`` ids whose prompt holds ``filters.text``, newest first, between ``bounds`` (``_bounds``)
        among the newest ``TEXT_WINDOW`` of its scope: the search's matches (``_matches``), each batch checked against
        the other indexes, the scope's own (a job deleted since), and for ``account`` the records. The whole window
        is one page: it may end short of ``limit`` only where it ends."""
        top, bottom = bounds
        if top is None or filters.text is None:
            return [], None
        scope = self.keys.key_jobs(filters.key_id) if filters.key_id else self.keys.all_jobs
        matches = self._matches(scope, filters.text.casefold(), self.connection.zrange(scope, -TEXT_WINDOW, -TEXT_WINDOW))
        candidates = [job_id for job_id in matches
                      if (bottom == "-" or job_id >= bottom[1:]) and (top == "+" or job_id < top[1:])]
        narrowed = self._indexes(filters.status, filters.model, filters.key_id, filters.batch_id)
        others = [scope, *(index for index in narrowed if index != scope)]
        unfiltered = replace(filters, text=None)
        found: builtins.list[str] = []
        for start in range(0, len(candidates), RECORDS_BATCH):
            for job_id in self._admitted(candidates[start:start + RECORDS_BATCH], others, unfiltered):
                if len(found) == limit:
                    return found, found[-1]  # one more exists: the page is full
                found.append(job_id)
        return found, None

    def _matches(self, scope: str, needle: str, oldest: builtins.list) -> builtins.list[str]:
        """The ids of ``scope``'s window (from ``oldest``, its oldest id, up; all of it when that is empty: the scope
        holds fewer than ``TEXT_WINDOW``) whose prompt holds ``needle`` (folded), newest first, kept up to date as
        ``store.search_matches`` says."""
        window, now = text(oldest[0]) if oldest else "", self.clock()
        kept = self.search_matches.get(scope, needle)
        if kept is None or window < kept.bottom or not kept.made_at <= now <= kept.made_at + ENTRY_SECONDS:
            matches = Matches(tuple(self._matching(scope, needle, f"[{window}" if window else "-")), window, now, now)
        else:
            since = max(job_id_floor(kept.scanned_at - MARGIN_SECONDS), window)
            fresh = self._matching(scope, needle, f"[{since}")
            matches = Matches((*fresh, *(job_id for job_id in kept.ids if window <= job_id < since)), window, now,
                              kept.made_at)
        self.search_matches.keep(scope, needle, matches)
        return list(matches.ids)

    def _matching(self, scope: str, needle: str, bottom: str) -> builtins.list[str]:
        """The ids of ``scope`` from ``bottom`` up whose prompt holds ``needle`` (folded), newest first, read and
        checked ``RECORDS_BATCH`` at a time; SearchTooLong past ``SEARCH_SECONDS`` (docs/operating.md: a search has a time
        bound, so one caller's searches never hold a work permit for long)."""
        found: builtins.list[str] = []
        start = "+"
        ends = time.monotonic() + SEARCH_SECONDS
        while True:
            if time.monotonic() > ends:
                raise SearchTooLong(f"the search for {needle[:40]!r} read prompts for over {SEARCH_SECONDS:g} s; "
                                    "narrow it (model, status, created_after) or search a longer text",
                                    retry_after=SEARCH_SECONDS)
            ids = [text(i) for i in self.connection.zrevrangebylex(scope, start, bottom, start=0, num=RECORDS_BATCH)]
            if ids:
                folded = self._folded_prompts(ids)
                # The rule of core.job_filters.prompt_holds, on prompts kept folded.
                found += [job_id for job_id in ids if needle in folded[job_id]]
            if len(ids) < RECORDS_BATCH:
                return found
            start = f"({ids[-1]}"

    def _admitted(self, ids: builtins.list[str], others: builtins.list[str],
                  filters: JobFilter) -> builtins.list[str]:
        """Those of ``ids`` in every one of ``others`` and, for ``account``, admitted by their records (a ``text``
        search has its matches already: ``_page_of_search``)."""
        if others:
            asked = self.connection.pipeline(transaction=False)
            for other in others:
                asked.zmscore(other, ids)
            scores = asked.execute()
            ids = [job_id for n, job_id in enumerate(ids) if all(score[n] is not None for score in scores)]
        if (filters.account is None and filters.end_user is None) or not ids:
            return ids
        kept = self._prompts([self.keys.job(job_id) for job_id in ids],
                             [filters.account or "", "", filters.end_user or ""])
        return [job_id for job_id, there in zip(ids, kept, strict=True) if there is not None]

    def _folded_prompts(self, ids: builtins.list[str]) -> dict[str, str]:
        """Each job's prompt, case-folded ('' for none or a record gone): from this process's cache, the rest read
        (``lua/job_prompts.lua``) and kept."""
        folded = self.prompt_cache.known(ids)
        unseen = [job_id for job_id in ids if job_id not in folded]
        if unseen:
            read = self._prompts([self.keys.job(job_id) for job_id in unseen], ["", "1", ""])
            self._chars_read.value = getattr(self._chars_read, "value", 0) + sum(len(p) for p in read if p is not None)
            # A record gone (its TTL ran out before retention dropped its ids) is not kept: it has no prompt to keep.
            folded.update(self.prompt_cache.keep({job_id: text(prompt) for job_id, prompt in
                                                  zip(unseen, read, strict=True) if prompt is not None}))
        return {job_id: folded.get(job_id, "") for job_id in ids}

    def prompt_chars_read(self) -> int:
        """Characters of prompts this thread's searches read from Redis since it last asked (a search's cost: prompts
        found in the process's cache cost nothing); asking starts the count again."""
        read, self._chars_read.value = getattr(self._chars_read, "value", 0), 0
        return read

    def created_before(self, when: float, limit: int) -> builtins.list[str]:
        """Ids of up to ``limit`` jobs made before ``when``, oldest first (reads only those)."""
        ids = self.connection.zrangebylex(self.keys.all_jobs, "-", f"({job_id_floor(when)}", start=0, num=limit)
        return [text(i) for i in ids]

    def forget(self, job_id: str) -> None:
        """Drop a job id whose record has already expired from every index."""
        models = [text(m) for m in self.connection.smembers(self.keys.models)]
        app_keys = [text(k) for k in self.connection.zrange(self.keys.app_keys, 0, -1)]
        pipe = self.connection.pipeline()
        for model in models:
            pipe.zrem(self.keys.model_jobs(model), job_id)
        for key_id in app_keys:
            pipe.zrem(self.keys.key_jobs(key_id), job_id)
            pipe.hdel(self.keys.key_budget_held(key_id), job_id)
        pipe.hdel(self.keys.budget_held, job_id)
        pipe.hdel(self.keys.slot_holders, job_id)
        pipe.zrem(self.keys.all_jobs, job_id)
        pipe.zrem(self.keys.due, job_id)
        pipe.zrem(self.keys.deadlines, job_id)
        pipe.zrem(self.keys.outbox, job_id)
        for status in st.STATUSES:
            pipe.zrem(self.keys.status(status), job_id)
        pipe.execute()

    def delete(self, job_id: str) -> str | None:
        """Remove the record and its indexes; returns its storage key as it was then ('' if none), None if no job."""
        if not is_job_id(job_id):
            return None
        read = self.connection.hmget(self.keys.job(job_id), "bfl_id", "model", "key_id", "batch_id")
        bfl_id, model, key_id, batch_id = (text(v or b"") for v in read)
        k = self.keys
        keys: list[str] = []
        indexes = [k.all_jobs, k.due, k.deadlines, k.outbox, *map(k.status, st.STATUSES),
                   *self._indexes(None, model, key_id, batch_id)]
        if key_id:
            # Its reservation against the key's daily_credits, if any, goes with it (a hash, not an index).
            self.connection.hdel(k.key_budget_held(key_id), job_id)
        spec = {"id": job_id, "bfl_id": bfl_id, "record": place(keys, k.job(job_id)),
                "indexes": [place(keys, index) for index in indexes], "bfl_task": place(keys, k.bfl_task(bfl_id)),
                "trackers": place(keys, k.bfl_trackers(bfl_id)), "owner": owner_of(key_id or None),
                "reservations": place(keys, k.budget_held), "holders": place(keys, k.slot_holders),
                "held": place(keys, k.fair_held), "slots": [place(keys, slots) for slots in self.slot_keys],
                "slot_counts": place(keys, k.slot_counts),
                "lines": [place(keys, line) for line in (*map(k.line, self.pools), k.aside)],
                "batch_counts": place(keys, k.batch_counts), "outbox": place(keys, k.outbox), "now": repr(self.clock()),
                "notify_added": place(keys, k.notify_added),
                "ended": dict.fromkeys(st.TERMINAL, True),
                "channel": k.job_changes}
        key = self._delete(keys, [json.dumps(spec)])
        self.connection.hdel(self.keys.routes, job_id)
        return None if key is None else text(key)


# How often ``show_running`` works a report out again when another changed the job meanwhile.
SHOW_ATTEMPTS = 5
# The record's fields of a recorded wait (``Job.waiting_reason``, ``Job.waiting_until``): gone once it leaves ``queued``.
WAIT_FIELDS = ("waiting_reason", "waiting_until")
# A page filtered by two indexes or more (status, model, key) reads at most this many ids of one, this many at a time.
BOTH_FILTERS_READ = 2000
BOTH_FILTERS_BATCH = 200
# A page filtered by what only the records say (account) reads at most this many records (a ``text`` search walks its
# matches, its whole window one page). This many a script call (``lua/job_prompts.lua``, about 1 ms of Redis each).
RECORDS_READ = TEXT_WINDOW
RECORDS_BATCH = 500
# The longest a prompt search reads before it gives up (a warm search answers in milliseconds: search_matches).
SEARCH_SECONDS = 1.0
