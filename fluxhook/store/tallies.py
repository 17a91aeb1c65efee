"""The metrics hash's counts and the hourly outcome counters, tallied in the process and written together.

Prometheus's counters (``Keys.metrics``, ``fluxhook.metrics``) and the dashboard's hourly counters (``Keys.hourly``)
are views, not records: nothing decides anything by them but sends paced by storage, which read the stored counts
(``CountStored``) as a rate over a minute, where counts late by a flush or lost with a process only make it careful.
So a ``CountMetrics``, ``CountHourly`` or ``CountStored`` effect is not
done in its transition's step: once the transition moved (and took its lock, if it names one), or once
``Effects.apply`` did the rest, its amounts are added to this process's tally. A process that ``start``\\ s the tally
(a worker, a web process) writes it every ``FLUSH_INTERVAL`` seconds in one round trip, a ``HINCRBY`` for each
field however many jobs added to it (a hash of three fields or more: one ``HMGET`` and one ``HSET``, lua/counters.lua),
and once more as it stops; any other (a command, a test) writes each at
once. A reading of either (``Store.metrics_fields``, ``UsageStore.hours``) writes the process's own tally first.

What it costs: a process killed outright (SIGKILL) loses what it tallied since its last write, at most
``FLUSH_INTERVAL`` seconds of counts; other processes' counts show up to that late in a reading. A write that
fails is tried again, as it was, before the next one: each write is a batch with an id of its own, marked as
written in the same step (``lua/tally_write.lua``: one hash of marks a process, a mark going once its answer came),
so one whose answer was lost never counts twice. A transition
run again after a failover lost it counts again. The usage counters (``CountUsage``), which budgets and spend read, are
not tallied: they stay in the transition's step.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from typing import Any, Iterable, NamedTuple, Sequence

from redis import Redis
from redis.exceptions import RedisError

from fluxhook.store.effects import CountHourly, CountMetrics, CountStored, Effect, counters_key
from fluxhook.store.keys import KEYS, Keys
from fluxhook.store.scripts import LuaScript

log = logging.getLogger("fluxhook.metrics")

# How often a started tally is written: what a process killed outright loses at most, and how late other
# processes' counts may show.
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
        self.connection = connection
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
        """Count the ``CountMetrics`` and ``CountHourly`` among ``effects``; unless started, write them now. Never
        raises: a count must not fail the work it counts (a write that failed is tried again with the next)."""
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
            self._merge(metrics, hours)
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

    def _merge(self, metrics: dict[str, int | float], hours: dict[tuple[str, int], dict[str, int]]) -> None:
        """Add counts to the tally (under its lock)."""
        _add_to(self._metrics, metrics.items())
        for hour, fields in hours.items():
            _add_to(self._hours.setdefault(hour, {}), fields.items())

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
