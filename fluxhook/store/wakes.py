"""Wake-up lists: how a worker's thread at rest waits for the work that would end its wait, in Redis, for free.

A wake-up list holds at most one item; whoever adds work pushes it (``push``), and a waiting thread blocks on it
(``Wakes.wait``: one ``BLPOP`` of the list and its process's stop list, however long). A thread at rest so costs
Redis one command per wait, whose bound is the thread's own (a due time, a heartbeat), not a poll's. Each push wakes
one waiter, in whichever process.

A stop ends every wait at once: the process pushes its stop list once for each of its waiting threads (``stop``),
rather than each wait being cut short to look. A thread that took a wake-up and then finds its process stopping puts
it back (``give_back``), so the work it announced wakes another process's thread.
"""

from __future__ import annotations

import os
import uuid

from redis import Redis

from fluxhook.store.keys import KEYS, Keys

# The longest one wait lasts: a wait for longer waits again. The waits' connection's socket timeout must outlast it.
LONGEST_WAIT = 300.0
# How long a process's stop list outlives its stop: its threads take their items within a second.
STOP_TTL = 60
# Woken by the list waited on, by the process's stop, or by neither within the timeout.
WORK, STOPPED, TIMEOUT = "work", "stop", "timeout"


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
        self.stop_key = keys.worker_stop(f"{os.getpid()}-{uuid.uuid4().hex[:8]}")

    def wait(self, key: str, timeout: float) -> str:
        """Block until ``key`` is pushed (``WORK``), the process stops (``STOPPED``) or ``timeout`` seconds pass
        (``TIMEOUT``)."""
        answer = self.connection.blpop([key, self.stop_key], timeout=min(max(timeout, 0.01), LONGEST_WAIT))
        if answer is None:
            return TIMEOUT
        woken = answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        return STOPPED if woken == self.stop_key else WORK

    def give_back(self, key: str) -> None:
        """Push ``key`` again: a wake-up taken by a thread that will not act on it (its process is stopping)."""
        push(self.connection, key)

    def stop(self, waiters: int) -> None:
        """End the waits of this process's ``waiters`` threads at once (each takes one item of the stop list)."""
        if waiters <= 0:
            return
        pipe = self.connection.pipeline(transaction=False)
        pipe.rpush(self.stop_key, *([1] * waiters))
        pipe.expire(self.stop_key, STOP_TTL)
        pipe.execute()
