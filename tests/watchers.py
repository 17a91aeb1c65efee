"""The wake watcher: a thread of each pytest process that watches the Redis of every stack of that process running a
worker (``devtools.stack.worker_stacks``), and records each unit of work left due with nobody woken for it.

A sweeper at rest waits until the first due time of its indexes (``Keys.sweep_indexes``) or until a producer pushes
its wake-up list (``Keys.sweep_added``); an awake one sweeps once a second, and a sweep's claim moves a due entry a
lease ahead. So while a stack's worker runs and its Redis answers, no entry of those indexes stays overdue for long:
one overdue by more than ``OVERDUE_LIMIT`` with the wake-up list empty is work a producer wrote without its push,
which only the worker's guard (``WAKE_GUARD_SECONDS``, 10 s in the suite's stacks) would find. The watcher judges a
stack only while its worker process is the one it saw start ``STARTUP`` seconds ago or more, is listed by RQ (so its
sweeper runs), is alive and not being stopped, and its Redis answers as a primary; the lateness it judges counts from
then at the earliest, so a worker killed, restarted or cut off from Redis by a test is not blamed for what piled up
meanwhile.

Every end-to-end test fails at its teardown on a violation found while it ran (tests/conftest.py); a test that counts
the Redis commands its stack sends opts out (``@pytest.mark.wake_watch_off(reason)``): the watcher's looks would be
counted, so it sends none during that test.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass

import redis
from rq import Worker

from devtools.stack import Stack, worker_stacks
from fluxhook.store.keys import KEYS

# How often it looks at each stack's Redis: one pipeline of a ZRANGEBYSCORE per index, an LLEN and a ROLE.
POLL = 0.25
# Overdue for longer than this with no wake-up pending: nobody was woken. An awake sweeper sweeps every second
# (SWEEP_INTERVAL) and one that failed waits a second more (loops.RETRY_INTERVAL); healthy runs of the suite showed
# at most 0.99 s (118 tests of tests/e2e/jobs, worker, batches and credits, two processes on this 2-core machine
# shared with other work). Under the suite's guard of 10 s: a skipped wake-up is
# seen before the guard hides it.
OVERDUE_LIMIT = 3.0
# A worker process it first sees is judged this much later: its imports, migrations and threads' start.
STARTUP = 10.0
# The earliest entries of each index read at each look.
SHOWN = 3
# Redis answers within this, or the stack is not judged at that look.
ANSWER_TIMEOUT = 1.0


@dataclass(frozen=True)
class Violation:
    """An entry of a sweep index overdue by ``overdue`` seconds with its stack's wake-up list empty."""

    test: str
    redis_url: str
    index: str
    member: str
    overdue: float

    def __str__(self) -> str:
        return (f"{self.member!r} in {self.index} ({self.redis_url}) overdue by {self.overdue:.1f} s with no wake-up "
                f"pending in {KEYS.sweep_added}, the worker alive (during {self.test})")


@dataclass
class _Watched:
    """What it knows of one stack: its connection, the worker process it judges, and since when."""

    connection: redis.Redis
    worker: subprocess.Popen | None = None
    worker_seen: float = 0.0  # when it first saw that worker process (epoch seconds)
    judged_from: float | None = None  # epoch seconds; None: not judged at the last look


class WakeWatcher(threading.Thread):
    """Looks every ``POLL`` seconds; ``violations`` grows with each entry found overdue past the limit (once per
    entry, as it passes it)."""

    def __init__(self, limit: float = OVERDUE_LIMIT, startup: float = STARTUP):
        super().__init__(name="wake-watcher", daemon=True)
        self.limit, self.startup = limit, startup
        self.violations: list[Violation] = []
        self.worst_of: dict[str, float] = {}  # Redis URL -> the most an entry there was overdue with no wake pending
        # Redis URL -> (judged from, last judged), epoch seconds: what an entry's lateness was counted over.
        self.judged: dict[str, tuple[float, float]] = {}
        self.test = "(no test)"
        self.paused = False
        self._watched: dict[int, _Watched] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(POLL):
            self.look()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)

    @property
    def worst(self) -> float:
        """The most any entry was seen overdue with no wake-up pending, past the limit or not, since ``reset``."""
        return max(self.worst_of.values(), default=0.0)

    def reset(self, test: str, paused: bool) -> None:
        """From now on, what it finds is found during ``test``; ``paused``: it looks at nothing meanwhile."""
        self.test, self.paused = test, paused
        self.worst_of = {}

    def take(self, redis_url: str | None = None) -> list[Violation]:
        """Remove and return the violations found (on ``redis_url`` only, if given; its ``worst`` too): each is
        reported once, by the test that takes it, the one that planted it or the one it was found during."""
        with self._lock:
            taken = [v for v in self.violations if redis_url in (None, v.redis_url)]
            self.violations = [v for v in self.violations if v not in taken]
            if redis_url is not None:
                self.worst_of.pop(redis_url, None)
            return taken

    def judged_past_limit(self, redis_url: str, due: float) -> bool:
        """Whether an entry of ``redis_url``'s indexes due at ``due`` would have been judged overdue past the limit by
        now, had it stayed there with no wake-up pending."""
        judged_from, last = self.judged.get(redis_url, (due, due))
        return last - max(due, judged_from) > self.limit

    def look(self) -> None:
        """One look at every stack running a worker."""
        stacks = {id(stack): stack for stack in worker_stacks()}
        for gone in set(self._watched) - set(stacks):
            self._watched.pop(gone).connection.close()
        for key, stack in stacks.items():
            if key not in self._watched:
                self._watched[key] = _Watched(redis.Redis.from_url(stack.env["REDIS_URL"], socket_timeout=ANSWER_TIMEOUT,
                                                                   socket_connect_timeout=ANSWER_TIMEOUT))
            self._look_at(stack, self._watched[key])

    def _look_at(self, stack: Stack, watched: _Watched) -> None:
        worker = stack.processes.get("worker")
        if worker is not watched.worker:
            watched.worker, watched.worker_seen = worker, time.time()
        if self.paused or worker is None or worker.poll() is not None or stack.stopping:
            watched.judged_from = None
            return
        now = time.time()
        pipe = watched.connection.pipeline(transaction=False)
        for index in KEYS.sweep_indexes:
            pipe.zrangebyscore(index, "-inf", now, start=0, num=SHOWN, withscores=True)
        pipe.llen(KEYS.sweep_added)
        pipe.execute_command("ROLE")
        try:
            *entries, pending, role = pipe.execute()
        except redis.RedisError:
            watched.judged_from = None
            return
        if role[0] not in (b"master", "master") or not Worker.count(connection=watched.connection):
            # Not judged until the worker is listed by RQ: its lanes register after its sweeper starts (worker/run.py),
            # and a worker started cold (a fresh clone compiling every module) took longer than STARTUP to get there.
            watched.judged_from = None
            return
        if watched.judged_from is None:
            watched.judged_from = max(now, watched.worker_seen + self.startup)
        if pending:
            return
        self.judged[stack.env["REDIS_URL"]] = (watched.judged_from, now)
        for index, found in zip(KEYS.sweep_indexes, entries, strict=True):
            for member, score in found:
                self._judge(stack, index, member.decode(), now - max(score, watched.judged_from))

    def _judge(self, stack: Stack, index: str, member: str, overdue: float) -> None:
        url = stack.env["REDIS_URL"]
        self.worst_of[url] = max(self.worst_of.get(url, 0.0), overdue)
        seen = (url, index, member)
        if overdue <= self.limit or seen in self._seen:
            return
        self._seen.add(seen)
        with self._lock:
            self.violations.append(Violation(self.test, stack.env["REDIS_URL"], index, member, overdue))
