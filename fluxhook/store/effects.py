"""What must happen together with a job's change, as values a reader can see.

A status change (``JobStore.transition``) takes a list of these and does them in the same
atomic step as the change, and only if the job moved: so a first Ready callback moves the
job, queues its download, adds its timeline entry and counts its metrics in one round trip.
``Effects.apply`` does the same list on its own, for work that has no status change to ride on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

from redis import Redis
from redis.commands.core import CoreCommands


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
    """Drop the job's reservation of credits against the daily limit (``Keys.budget_held``)."""

    job_id: str


Effect = Union[QueueTask, AddTimelineEntry, CountMetrics, CountUsage, CountHourly, ReleaseBudget]


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


class Effects:
    """Does a list of effects on its own: one round trip, in a MULTI, so they are all done or none."""

    def __init__(self, connection: Redis, keys, timeline_cap: int, timeline_ttl: int):
        self.connection = connection
        self.keys = keys
        self.timeline_cap = timeline_cap
        self.timeline_ttl = timeline_ttl

    def apply(self, effects: Sequence[Effect]) -> None:
        """Do ``effects`` now."""
        if not effects:
            return
        pipe = self.connection.pipeline(transaction=True)
        for effect in effects:
            if isinstance(effect, QueueTask):
                for command in effect.commands:
                    pipe.execute_command(*command)
            elif isinstance(effect, AddTimelineEntry):
                key = self.keys.timeline(effect.job_id)
                pipe.lpush(key, effect.entry)
                pipe.ltrim(key, 0, self.timeline_cap - 1)
                pipe.expire(key, self.timeline_ttl)
            elif isinstance(effect, CountMetrics):
                for field, amount in effect.increments:
                    if isinstance(amount, int):
                        pipe.hincrby(self.keys.metrics, field, amount)
                    else:
                        pipe.hincrbyfloat(self.keys.metrics, field, amount)
            elif isinstance(effect, (CountUsage, CountHourly)):
                key, ttl = counters_key(self.keys, effect)
                for field, amount in effect.increments:
                    pipe.hincrby(key, field, amount)
                pipe.expire(key, ttl)
            elif isinstance(effect, ReleaseBudget):
                pipe.hdel(self.keys.budget_held, effect.job_id)
            else:
                raise TypeError(f"not an effect: {effect!r}")
        pipe.execute()
