"""What must happen together with a job's change, as values a reader can see, and how each is done: in the change's
step, or tallied in the process.

A status change (``JobStore.transition``) does a list of these in its own atomic step, only if the job moved: so a first
Ready callback moves the job, puts it in the download line and adds its timeline entry in one round trip.
``Effects.apply`` does the same list on its own, for work with no status change to ride on. Both encode them here
(``encode``) for the one routine that does them, ``lua/effects.lua``, but for the counts tallied in the process
(``TALLIED``).

Prometheus's counters (``Keys.metrics``, ``fluxhook.metrics``) and the dashboard's hourly counters (``Keys.hourly``)
are views, not records: nothing decides anything by them but sends paced by storage, which read the stored counts
(``CountStored``) as a rate over a minute, where counts late by a flush or lost with a process only make it careful.
So a ``CountMetrics``, ``CountHourly`` or ``CountStored`` effect is added to this process's tally once its transition
moved (and took its lock, if it names one) or ``Effects.apply`` did the rest. A process that ``start``\\ s the tally (a
worker, a web process) writes it every ``FLUSH_INTERVAL`` seconds in one round trip, a ``HINCRBY`` for each field
however many jobs added to it (a hash of three fields or more: one ``HMGET`` and one ``HSET``, lua/counters.lua), and
once more as it stops; any other (a command, a test) writes each at once. A reading of either (``Store.metrics_fields``,
``UsageStore.hours``) writes the process's own tally first.

What it costs: a process killed outright (SIGKILL) loses what it tallied since its last write, at most
``FLUSH_INTERVAL`` seconds of counts; other processes' counts show up to that late in a reading. A write that
fails is tried again, as it was, before the next one: each write is a batch with an id of its own, marked as
written in the same step (``lua/tally_write.lua``: one hash of marks a process, a mark going once its answer came),
so one whose answer was lost never counts twice. A transition run again after a failover lost it counts again. The
usage counters (``CountUsage``), which budgets and spend read, are not tallied: they stay in the transition's step.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple, Sequence, Union

from redis import Redis
from redis.exceptions import RedisError

from fluxhook.core.holds import END_USER_TTL, HOURLY_TTL, MOVE_LEASE, STORED_TTL, USAGE_TTL
from fluxhook.core.job import Job
from fluxhook.core.pacing import RATE_BUCKET
from fluxhook.store.cooldowns import ACCOUNT_WIDE
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.owners import ADMIN_OWNER, DEFAULT_WEIGHT, end_user_ranges, owner_of
from fluxhook.store.queues import QUEUE_KEY
from fluxhook.store.scripts import LuaScript, text
from fluxhook.store.timeline import TIMELINE_CAP
from fluxhook.store.work_lines import AHEAD, KINDS, checked_kind


@dataclass(frozen=True)
class AddWork:
    """Put a job in the work line of ``kind`` (``fluxhook.store.work_lines``), from which its RQ task is queued
    in its turn (``lifecycle.steps.enqueueing.feed``); or, when no line holds any work and RQ's queue has room, take
    it for RQ at once: the step returns it (``Handed``) and its caller queues its task.

    The job's member names its owner, read from the job's record in the same step (its ``key_id``, or
    the admin owner): so the caller need not read the job first. A job gone meanwhile is not added.
    """

    kind: str
    job_id: str


@dataclass(frozen=True)
class AddTimelineEntry:
    """Append a JSON entry to a job's timeline (capped, expiring with the record)."""

    job_id: str
    entry: str


@dataclass(frozen=True)
class CountMetrics:
    """Add to metric fields of the metrics hash: (field, amount) pairs; float amounts add as floats."""

    increments: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class CountUsage:
    """Add to one UTC day's usage counters (``Keys.usage``): (field, amount) pairs, whole numbers."""

    day: str
    increments: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CountEndUser:
    """Add to one UTC day's counters of an owner's end users (``Keys.end_user_day``): (field, amount) pairs.
    ``life_set``: the day's hash has its life already (the job's count when BFL accepted it, on the same day's hash,
    set it), so a field that starts here sets none again."""

    owner: str
    day: str
    increments: tuple[tuple[str, int], ...]
    life_set: bool = False


@dataclass(frozen=True)
class CountHourly:
    """Add to one UTC hour's outcome counters (``Keys.hourly``): (field, amount) pairs, whole numbers."""

    hour: str
    increments: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class CountStored:
    """One result stored at ``at``: counted in its minute's stored counts (``Keys.stored_counts``), in its bucket,
    the rate sends to BFL are paced by (``core.pacing``)."""

    at: float

    @property
    def increments(self) -> tuple[tuple[str, int], ...]:
        return ((str(int(self.at) // RATE_BUCKET * RATE_BUCKET), 1),)


@dataclass(frozen=True)
class ReleaseBudget:
    """Drop the job's reservation of credits against the daily limit (``Keys.budget_held``), and against its
    app key's (``Keys.key_budget_held``) and its BFL account's (``Keys.bfl_account_budget_held``) when named; and
    its end user's, with the hold its admission took there (``Keys.end_user_admitted``)."""

    job_id: str
    key_id: str | None = None
    account: str | None = None
    # The job's end user, when its key limits that end user's credits (``Job.end_user_daily_credits``).
    end_user: str | None = None
    # Whether its admission's hold on its end user's credits goes too: not while the job is still to be sent.
    admission: bool = True

    @classmethod
    def of(cls, job: Job, account: str | None = None, *, admission: bool = True) -> ReleaseBudget:
        """The job's reservations, wherever it may hold one (``admission``: and its admission's hold)."""
        limited = job.end_user if job.end_user_daily_credits is not None else None
        return cls(job.id, job.key_id, account, limited, admission)


@dataclass(frozen=True)
class AccountAccepted:
    """BFL accepted a task of ``account``'s ``pool`` at ``now``: the account's refusals in a row start again from
    none, and a cooldown of it that is over ends (``store.cooldowns``, ``lua/account_standing.lua``)."""

    account: str
    pool: str
    now: float


@dataclass(frozen=True)
class AccountJobEnded:
    """A job ``account`` ran at BFL ended at ``at``: a balance of the account read before then may be BFL's no longer,
    and is read again (``credits.balance``). One ``HSET`` in the end's own step (``Keys.balance_ended``)."""

    account: str
    at: float


@dataclass(frozen=True)
class WakeEndUserWaiting:
    """A job of app key ``key_id``'s ``end_user`` left BFL: that end user's jobs waiting aside for a place under its
    ``max_active`` come due now, each looked at by the sweep at once rather than at its reason's end."""

    key_id: str
    end_user: str


# Work an effect took for RQ at once (``AddWork``): kind -> members (``<owner>:<job id>``), each job held by its move's
# lease (``lua/work_moves.lua``) until the caller queues its task (``lifecycle.steps.enqueueing.queue_handed``).
Handed = dict[str, list[str]]


def handed(reply) -> Handed:
    """The script's flat list (kind, member, ...) as ``Handed``."""
    found: Handed = {}
    for kind, item in zip(reply[0::2], reply[1::2], strict=True):
        found.setdefault(text(kind), []).append(text(item))
    return found


Effect = Union[AddWork, AddTimelineEntry, CountMetrics, CountUsage, CountEndUser, CountHourly, CountStored,
               ReleaseBudget, AccountAccepted, AccountJobEnded, WakeEndUserWaiting]

# The effects not done in Redis's step but tallied in the process (``Tallies``).
TALLIED = (CountMetrics, CountHourly, CountStored)


def split(effects: Sequence[Effect]) -> tuple[list[Effect], list[Effect]]:
    """``effects`` as (those done in Redis's step, those tallied in the process)."""
    return ([effect for effect in effects if not isinstance(effect, TALLIED)],
            [effect for effect in effects if isinstance(effect, TALLIED)])




def counters_key(keys, effect: Union[CountUsage, CountEndUser, CountHourly, CountStored]) -> tuple[str, int]:
    """The hash a counting effect adds to, and how long that hash is kept: after the count that started a field in it
    (usage, ``lua/effects.lua``), after its last change (hourly outcomes, ``lua/tally_write.lua``)."""
    if isinstance(effect, CountUsage):
        return keys.usage(effect.day), USAGE_TTL
    if isinstance(effect, CountEndUser):
        return keys.end_user_day(effect.owner, effect.day), END_USER_TTL
    if isinstance(effect, CountStored):
        return keys.stored_counts(int(effect.at) // 60), STORED_TTL
    return keys.hourly(effect.hour), HOURLY_TTL


def place(keys: list[str], key: str) -> int:
    """``key``'s 1-based position in a script's KEYS, appended if new."""
    try:
        return keys.index(key) + 1
    except ValueError:
        keys.append(key)
        return len(keys)


def encode(effects: Sequence[Effect], store_keys, keys: list[str], timeline_ttl: int, now: float) -> list[dict]:
    """``effects`` (none of them ``TALLIED``) as lua/effects.lua's entries (the only code that does them): each
    names its keys by position in ``keys`` (appended as needed). ``now``: when work taken at once was taken."""
    entries: list[dict] = []
    for effect in effects:
        if isinstance(effect, AddTimelineEntry):
            entries.append({"timeline": place(keys, store_keys.timeline(effect.job_id)), "entry": effect.entry,
                            "cap": TIMELINE_CAP, "ttl": timeline_ttl})
        elif isinstance(effect, (CountUsage, CountEndUser)):
            key, ttl = counters_key(store_keys, effect)
            kept = isinstance(effect, CountEndUser) and effect.life_set
            entries.append({"counters": place(keys, key), "increments": [list(i) for i in effect.increments],
                            **({} if kept else {"ttl": ttl})})
        elif isinstance(effect, ReleaseBudget):
            held = [store_keys.budget_held] + ([store_keys.key_budget_held(effect.key_id)] if effect.key_id else []) \
                + ([store_keys.bfl_account_budget_held(effect.account)] if effect.account else []) \
                + ([store_keys.end_user_budget_held(effect.key_id, effect.end_user)]
                   if effect.key_id and effect.end_user else []) \
                + ([store_keys.end_user_admitted(effect.key_id, effect.end_user)]
                   if effect.key_id and effect.end_user and effect.admission else [])
            entries += [{"release": place(keys, key), "member": effect.job_id} for key in held]
        elif isinstance(effect, AccountAccepted):
            strikes = [store_keys.strikes(effect.pool, effect.account), store_keys.strikes(ACCOUNT_WIDE, effect.account)]
            entries.append({"accepted": place(keys, store_keys.cooling(effect.account)),
                            "strikes": [place(keys, key) for key in strikes], "now": effect.now})
        elif isinstance(effect, AccountJobEnded):
            entries.append({"ended": place(keys, store_keys.balance_ended), "account": effect.account,
                            "at": repr(effect.at)})
        elif isinstance(effect, AddWork):
            kind = checked_kind(effect.kind)
            entries.append({"work": place(keys, store_keys.work_line(kind)), "record": place(keys, store_keys.job(effect.job_id)),
                            "job": effect.job_id, "admin": ADMIN_OWNER, "wake": place(keys, store_keys.work_added),
                            # What taking it at once needs: every line, and what work_take.lua would read and write.
                            "kind": kind, "lines": [place(keys, store_keys.work_line(k)) for k in KINDS],
                            "queue": place(keys, QUEUE_KEY), "due": place(keys, store_keys.due), "lease": MOVE_LEASE,
                            "ahead": AHEAD, "now": repr(now), "passes": place(keys, store_keys.work_passes(kind)),
                            "weights": place(keys, store_keys.share_weights), "default_weight": DEFAULT_WEIGHT})
        elif isinstance(effect, WakeEndUserWaiting):
            entries.append({"wake_aside": place(keys, store_keys.aside), "owner": owner_of(effect.key_id),
                            "ranges": end_user_ranges(owner_of(effect.key_id), effect.end_user),
                            "due": place(keys, store_keys.due), "wake": place(keys, store_keys.sweep_added),
                            "now": repr(now)})
        else:
            raise TypeError(f"not an effect done in Redis's step: {effect!r}")
    return entries


class Effects:
    """Does a list of effects on its own: one script, so they are all done or none; then ``tally`` counts the
    ``TALLIED`` ones (``Tallies.add``)."""

    def __init__(self, connection: Redis, keys, timeline_ttl: int, tally: Callable[[Sequence[Effect]], None]):
        self.keys = keys
        self.timeline_ttl = timeline_ttl
        self.tally = tally
        self._apply = LuaScript(connection, "effects_apply")

    def apply(self, effects: Sequence[Effect]) -> Handed:
        """Do ``effects`` now; the work they took for RQ at once, for the caller to queue."""
        done, tallied = split(effects)
        taken: Handed = {}
        if done:
            keys: list[str] = []
            entries = encode(done, self.keys, keys, self.timeline_ttl, time.time())
            taken = handed(self._apply(keys, [json.dumps(entries, separators=(",", ":"))]))
        if tallied:
            self.tally(tallied)
        return taken


log = logging.getLogger("fluxhook.metrics")

# How often a started tally is written (what it costs: the module's docstring).
FLUSH_INTERVAL = 5.0
# A process's marks outlive any try of a batch again: its next write tries its unwritten ones first.
BATCH_MARK_SECONDS = 600


class _Batch(NamedTuple):
    """Counts taken from the tally to be written in one step, under an id of their own."""

    id: str
    metrics: dict[str, int | float]
    # (hash, its TTL) -> field -> amount
    hours: dict[tuple[str, int], dict[str, int]]


class Tallies:
    """This process's counts not yet written (see the module's docstring)."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.keys = keys
        self._lock = threading.Lock()
        # One flush at a time: two at once (the writer thread's and a reading's) would each send a batch.
        self._flushing = threading.Lock()
        self._metrics: dict[str, int | float] = {}
        # (hash, its TTL) -> field -> amount
        self._hours: dict[tuple[str, int], dict[str, int]] = {}
        # Batches taken from the tally whose write failed: each is written as it was, by its id, before the next.
        self._unwritten: list[_Batch] = []
        # The marks of this tally's batches written, and those whose answer came (their marks go with the next write).
        self._marks = keys.tally_marks(uuid.uuid4().hex)
        self._answered: list[str] = []
        self._write = LuaScript(connection, "tally_write")
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        """From now on, write the tally every ``FLUSH_INTERVAL`` seconds (a thread of the process) and at exit."""
        with self._lock:
            if self._writer is not None:
                return
            self._writer = threading.Thread(target=self._run, name="fluxhook-tally", daemon=True)
        self._writer.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop writing every few seconds, and write what is left now (never raises: the process is stopping)."""
        self._stop.set()
        self._flush_logged()

    def add(self, effects: Sequence[Effect]) -> None:
        """Count the ``TALLIED`` among ``effects``; unless started, write them now. Never raises: a count must not fail
        the work it counts (a write that failed is tried again with the next)."""
        metrics: dict[str, int | float] = {}
        hours: dict[tuple[str, int], dict[str, int]] = {}
        for effect in effects:
            if isinstance(effect, CountMetrics):
                _add_to(metrics, effect.increments)
            elif isinstance(effect, (CountHourly, CountStored)):
                _add_to(hours.setdefault(counters_key(self.keys, effect), {}), effect.increments)
        if not metrics and not hours:
            return
        with self._lock:
            _add_to(self._metrics, metrics.items())
            for hour, fields in hours.items():
                _add_to(self._hours.setdefault(hour, {}), fields.items())
            started = self._writer is not None
        if not started:
            self._flush_logged()

    def flush(self) -> None:
        """Write the tally now, one round trip a batch (none when there is nothing to write): the batches whose
        write failed first, as they were, then what was tallied since. A RedisError keeps what is not written for
        the next write and is raised."""
        with self._flushing:
            with self._lock:
                if self._metrics or self._hours:
                    self._unwritten.append(_Batch(uuid.uuid4().hex, self._metrics, self._hours))
                    self._metrics, self._hours = {}, {}
                batches = list(self._unwritten)
            for batch in batches:
                self._write_batch(batch)  # a RedisError leaves it, and those after it, unwritten
                with self._lock:
                    self._unwritten.remove(batch)

    def _write_batch(self, batch: _Batch) -> None:
        keys = [self._marks, self.keys.metrics]
        args: list[str | int] = [BATCH_MARK_SECONDS, len(self._answered), *self._answered, batch.id,
                                 len(batch.metrics)]
        for field, amount in batch.metrics.items():
            args += [field, repr(amount) if isinstance(amount, float) else amount,
                     "f" if isinstance(amount, float) else "i"]
        for (key, ttl), fields in batch.hours.items():
            keys.append(key)
            args += [ttl, len(fields)]
            for field, whole in fields.items():
                args += [field, whole]
        self._write(keys, args)
        self._answered = [batch.id]

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except RedisError as exc:
            log.warning("counts not written yet", extra={"error": type(exc).__name__})

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            self._flush_logged()


def _add_to(counts: dict, increments: Iterable[tuple[str, Any]]) -> None:
    for field, amount in increments:
        counts[field] = counts.get(field, 0) + amount
