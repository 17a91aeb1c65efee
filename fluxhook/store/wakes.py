"""Wake-up lists: how a worker's thread at rest waits for the work that would end its wait, in Redis, for free.

A wake-up list holds at most one item; whoever adds work pushes it (``push``), and a waiting thread blocks on it
(``Wakes.wait``: one ``BLPOP`` of the list and its process's stop list, however long; ``Wakes.wait_any``: of several
lists, the process's dispatcher's, and its own nudge list). A thread at rest so costs Redis one command per wait, whose
bound is the thread's own (a due time, a heartbeat), not a poll's. Each push wakes one waiter, in whichever process.

A wake-up can still be lost: a primary that failed over had not passed it on, a process of an older release added work
the way it did. So a waiter at rest says what it watches (``Watched``: the keys that hold its work) while it waits, and
the process's guard (worker/guarding.py) looks at all of them every ``WAKE_GUARD_SECONDS`` (``look``: one command while
nothing is there), pushing again the wake-up of a waiter whose work is there: a lost wake-up costs at most the guard.

A stop ends every wait at once: the process pushes its stop list once for each of its waiting threads (``stop``),
rather than each wait being cut short to look. A thread that took a wake-up and then finds its process stopping puts
it back (``give_back``), so the work it announced wakes another process's thread.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass
from typing import Mapping, Sequence

from redis import Redis

from fluxhook.core.holds import LONGEST_WAIT, STOP_LIST_TTL
from fluxhook.store.keys import KEYS, Keys

# Woken by the list waited on, by the process's stop, or by neither within the timeout.
WORK, STOPPED, TIMEOUT = "work", "stop", "timeout"


@dataclass(frozen=True)
class Watched:
    """What a waiter at rest waits for, for the guard's look: keys that exist only while they hold its work
    (``present``: an empty list, set or hash does not exist), and sorted sets scored by due time, each with the earliest
    due time the waiter knows (``earlier``: an entry scored before it is one it has not seen)."""

    present: tuple[str, ...] = ()
    earlier: tuple[tuple[str, float], ...] = ()


def push(target, key: str) -> None:
    """Push the wake-up list ``key`` on ``target`` (a connection or a pipeline): two commands, at most one item."""
    target.lpush(key, 1)
    target.ltrim(key, 0, 0)


class Wakes:
    """One worker process's waits on wake-up lists, on a connection whose socket timeout outlasts its longest wait."""

    def __init__(self, connection: Redis, keys: Keys = KEYS):
        self.connection = connection
        self.keys = keys
        # The process's own stop list: its pid and a random part, for a pid is reused across containers.
        process = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.stop_key = keys.worker_stop(process)
        self.nudge_key = keys.worker_nudge(process)
        # The waiters at rest now, by thread: the wake-ups each waits on, each with what it watches.
        self._resting: dict[int, Mapping[str, Watched]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, timeout: float, watched: Watched | None = None) -> str:
        """Block until ``key`` is pushed (``WORK``), the process stops (``STOPPED``) or ``timeout`` seconds pass
        (``TIMEOUT``). ``watched``: the waiter is at rest, its work where it says, which the guard looks at meanwhile
        (``look``)."""
        woken, _ = self.wait_any([key], timeout, None if watched is None else {key: watched})
        return WORK if woken == key else woken

    def wait_any(self, keys: Sequence[str], timeout: float,
                 watched: Mapping[str, Watched] | None = None) -> tuple[str, str | None]:
        """Block until one of ``keys`` is pushed (that key and the item taken from it), the process stops
        (``STOPPED``) or ``timeout`` seconds pass (``TIMEOUT``), with no item. ``watched``: the wake-ups of ``keys``
        at rest, each with what it watches, which the guard looks at meanwhile (``look``)."""
        thread = threading.get_ident()
        if watched:
            with self._lock:
                self._resting[thread] = watched
        try:
            answer = self.connection.blpop([*keys, self.stop_key], timeout=min(max(timeout, 0.01), LONGEST_WAIT))
        finally:
            if watched:
                with self._lock:
                    self._resting.pop(thread, None)
        if answer is None:
            return TIMEOUT, None
        woken, item = (part.decode() if isinstance(part, bytes) else part for part in answer)
        return (STOPPED, None) if woken == self.stop_key else (woken, item)

    def nudge(self, item: str) -> None:
        """Push ``item`` on the process's own nudge list (its dispatcher waits on it); it expires as the stop list."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.rpush(self.nudge_key, item)
        pipe.expire(self.nudge_key, int(STOP_LIST_TTL))
        pipe.execute()

    def look(self) -> list[str]:
        """The guard's look: push again the wake-up of each waiter at rest whose work is there (its wake-up was lost);
        which were pushed. One command while nothing is there (an ``EXISTS`` of every key watched for being there), and
        one more for each sorted set watched for an earlier entry (a waiter that knows of work due later)."""
        with self._lock:
            resting = [pair for waits in self._resting.values() for pair in waits.items()]
        if not resting:
            return []
        present = sorted({name for _, watched in resting for name in watched.present})
        pipe = self.connection.pipeline(transaction=False)
        if present:
            pipe.exists(*present)
        for name, due in (pair for _, watched in resting for pair in watched.earlier):
            pipe.zcount(name, "-inf", f"({due!r}")
        answers = iter(pipe.execute())
        anything_present = bool(next(answers)) if present else False
        lost = {key for key, watched in resting if any([next(answers) for _ in watched.earlier])}
        if anything_present:
            lost |= self._holding({key: watched.present for key, watched in resting if watched.present})
        if lost:
            pipe = self.connection.pipeline(transaction=False)
            for key in sorted(lost):
                push(pipe, key)
            pipe.execute()
        return sorted(lost)

    def _holding(self, present: dict[str, tuple[str, ...]]) -> set[str]:
        """Of the waiters' wake-ups ``present`` names, those whose keys hold something now (one command each: a waiter's
        work was found somewhere, rare at rest)."""
        if len(present) == 1:
            return set(present)
        pipe = self.connection.pipeline(transaction=False)
        for names in present.values():
            pipe.exists(*names)
        return {key for key, count in zip(present, pipe.execute(), strict=True) if count}

    def give_back(self, key: str) -> None:
        """Push ``key`` again: a wake-up taken by a thread that will not act on it (its process is stopping)."""
        push(self.connection, key)

    def stop(self, waiters: int) -> None:
        """End the waits of this process's ``waiters`` threads at once (each takes one item of the stop list)."""
        if waiters <= 0:
            return
        pipe = self.connection.pipeline(transaction=False)
        pipe.rpush(self.stop_key, *([1] * waiters))
        pipe.expire(self.stop_key, int(STOP_LIST_TTL))
        pipe.execute()
