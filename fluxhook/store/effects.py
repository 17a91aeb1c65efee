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


Effect = Union[QueueTask, AddTimelineEntry, CountMetrics]


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
            else:
                raise TypeError(f"not an effect: {effect!r}")
        pipe.execute()
