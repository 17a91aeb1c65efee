"""What must happen together with a job's change, as values a reader can see.

A status change (``JobStore.transition``) takes a list of these and does them in the same
atomic step as the change, and only if the job moved: so a first Ready callback moves the
job, queues its download, adds its timeline entry and counts its metrics in one round trip.
``Effects.apply`` does the same list on its own, for work that has no status change to ride on.
Both encode them here (``encode``) for the one routine that does them, ``lua/effects.lua``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

from redis import Redis
from redis.commands.core import CoreCommands

from fluxhook.store.owners import ADMIN_OWNER
from fluxhook.store.scripts import LuaScript
from fluxhook.store.timeline import TIMELINE_CAP
from fluxhook.store.work_lines import checked_kind


@dataclass(frozen=True)
class QueueTask:
    """Queue an RQ task: the writes RQ's own enqueue makes, recorded through its public ``pipeline=`` argument.

    Recorded rather than rewritten: RQ stays the only author of its task records.
    """

    commands: tuple[tuple[Any, ...], ...]

    @classmethod
    def record(cls, enqueue: Callable[[Any], Any]) -> "QueueTask":
        """The task that ``enqueue(pipeline)`` would queue (an RQ enqueue call given that pipeline)."""
        recorder = _CommandRecorder()
        enqueue(recorder)
        return cls(tuple(recorder.commands))


@dataclass(frozen=True)
class AddWork:
    """Put a job in the work line of ``kind`` (``fluxhook.store.work_lines``) and queue ``token``, the RQ task
    that will take a job of that kind (whichever's turn it is then), together.

    The job's member names its owner, read from the job's record in the same step (its ``key_id``, or
    the admin owner): so the caller need not read the job first. A job gone meanwhile is not added (its
    token, queued still, finds nothing or another job's work).
    """

    kind: str
    job_id: str
    token: QueueTask


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
class CountHourly:
    """Add to one UTC hour's outcome counters (``Keys.hourly``): (field, amount) pairs, whole numbers."""

    hour: str
    increments: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ReleaseBudget:
    """Drop the job's reservation of credits against the daily limit (``Keys.budget_held``), and against its
    app key's (``Keys.key_budget_held``) when it has one."""

    job_id: str
    key_id: str | None = None


Effect = Union[QueueTask, AddWork, AddTimelineEntry, CountMetrics, CountUsage, CountHourly, ReleaseBudget]


# Usage counters outlive the year GET /v1/usage can ask for; hourly outcomes serve the dashboard's recent view.
USAGE_TTL = 400 * 86400
HOURLY_TTL = 35 * 86400


def counters_key(keys, effect: Union[CountUsage, CountHourly]) -> tuple[str, int]:
    """The hash a counting effect adds to, and how long that hash is kept after its last change."""
    if isinstance(effect, CountUsage):
        return keys.usage(effect.day), USAGE_TTL
    return keys.hourly(effect.hour), HOURLY_TTL


class _CommandRecorder(CoreCommands):
    """Stands in for a redis-py pipeline in MULTI mode and keeps the commands given to it, unsent."""

    explicit_transaction = True

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def multi(self) -> None:
        """Already in MULTI mode: nothing to do."""

    def execute_command(self, *args: Any, **options: Any) -> "_CommandRecorder":
        self.commands.append(args)
        return self


def place(keys: list[str], key: str) -> int:
    """``key``'s 1-based position in a script's KEYS, appended if new."""
    try:
        return keys.index(key) + 1
    except ValueError:
        keys.append(key)
        return len(keys)


def encode(effects: Sequence[Effect], store_keys, keys: list[str], words: list[Any], timeline_ttl: int) -> list[dict]:
    """``effects`` as lua/effects.lua's entries (the only code that does them): each names its keys by
    position in ``keys`` (appended as needed), and a recorded command's words go to ``words``, which a
    script passes after its one JSON argument (ARGV[2...])."""
    entries: list[dict] = []
    for effect in effects:
        if isinstance(effect, AddTimelineEntry):
            entries.append({"timeline": place(keys, store_keys.timeline(effect.job_id)), "entry": effect.entry,
                            "cap": TIMELINE_CAP, "ttl": timeline_ttl})
        elif isinstance(effect, CountMetrics):
            entries.append({"metrics": place(keys, store_keys.metrics), "increments": [
                [field, amount, not isinstance(amount, int)] for field, amount in effect.increments]})
        elif isinstance(effect, (CountUsage, CountHourly)):
            key, ttl = counters_key(store_keys, effect)
            entries.append({"counters": place(keys, key), "increments": [list(i) for i in effect.increments],
                            "ttl": ttl})
        elif isinstance(effect, ReleaseBudget):
            held = [store_keys.budget_held] + ([store_keys.key_budget_held(effect.key_id)] if effect.key_id else [])
            entries += [{"release": place(keys, key), "member": effect.job_id} for key in held]
        elif isinstance(effect, AddWork):
            kind = checked_kind(effect.kind)
            entries.append({"work": place(keys, store_keys.work_line(kind)), "record": place(keys, store_keys.job(effect.job_id)),
                            "job": effect.job_id, "admin": ADMIN_OWNER})
            entries += encode([effect.token], store_keys, keys, words, timeline_ttl)
        elif isinstance(effect, QueueTask):
            for name, key, *rest in effect.commands:
                first = len(words) + 2  # ARGV[1] is the JSON
                words += rest
                entries.append({"command": name, "key": place(keys, key), "first": first,
                                "last": first + len(rest) - 1})
        else:
            raise TypeError(f"not an effect: {effect!r}")
    return entries


class Effects:
    """Does a list of effects on its own: one script, so they are all done or none."""

    def __init__(self, connection: Redis, keys, timeline_ttl: int):
        self.keys = keys
        self.timeline_ttl = timeline_ttl
        self._apply = LuaScript(connection, "effects", "effects_apply")

    def apply(self, effects: Sequence[Effect]) -> None:
        """Do ``effects`` now."""
        if not effects:
            return
        keys: list[str] = []
        words: list[Any] = []
        entries = encode(effects, self.keys, keys, words, self.timeline_ttl)
        self._apply(keys, [json.dumps(entries, separators=(",", ":")), *words])
