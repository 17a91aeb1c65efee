"""The suite's wake watcher (tests/watchers.py), proven by running code: a producer planted to skip its wake-up leaves
work due that the watcher reports, and the same write made the one way (the ``sweep_index_add`` script, which pushes
the sweepers' wake-up list) is reported by no one.

Its stack, on a Redis of its own, has its sweeper at rest until an entry due in an hour, and a guard of 30 s
(``WAKE_GUARD_SECONDS``): the guard would find the planted work and wake the sweeper, hiding the fault, long after
the watcher's limit. No tenant's part is shared here (the watcher reads the sweep indexes, which are no app key's):
there is no second tenant to see anything.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from devtools.processes import RedisServer, wait_until
from fluxhook.store.keys import KEYS
from fluxhook.store.scripts import LuaScript
from helpers import stack_on_db
from watchers import OVERDUE_LIMIT, STARTUP
from worker.run import WAITERS

GUARD = 30
FAR = 3600.0


@pytest.fixture(scope="module")
def resting(simulator, _spies, tmp_path_factory):
    """The stack with its sweeper at rest until an entry due in an hour, and the number of its Redis clients blocked
    then: every waiter of its worker at rest."""
    server = RedisServer().start()
    try:
        with stack_on_db(server, simulator, _spies[0].port, Path(tmp_path_factory.mktemp("watched")), 0,
                         WAKE_GUARD_SECONDS=str(GUARD), WORKER_PROCESSES="1") as running:
            db = redis.Redis.from_url(running.env["REDIS_URL"])
            log = running.var_dir / "worker.log"
            wait_until(lambda: log.exists() and "worker started" in log.read_text(), timeout=30,
                       message="the worker to start")
            # Its threads that wait on wake-up lists (the sweeper among them) all blocked: nothing to do yet.
            blocked = wait_until(lambda: (lambda n: n if n >= WAITERS else None)(db.info("clients")["blocked_clients"]),
                                 timeout=10, message="the worker's waiters to block")
            LuaScript(db, "sweep_index_add")([KEYS.due, KEYS.sweep_added], [repr(time.time() + FAR), "due-in-an-hour"])
            yield running, db, blocked
    finally:
        server.stop()


def _at_rest(db: redis.Redis, blocked: int) -> None:
    wait_until(lambda: db.llen(KEYS.sweep_added) == 0 and db.info("clients")["blocked_clients"] >= blocked,
               timeout=15, message="the sweeper to rest until the entry due in an hour")


def test_work_written_due_with_no_wake_up_is_reported_by_the_watcher(resting, wake_watcher):
    stack, db, blocked = resting
    url = stack.env["REDIS_URL"]
    assert int(stack.env["WAKE_GUARD_SECONDS"]) > STARTUP + OVERDUE_LIMIT + 5  # the guard finds it after the watcher
    _at_rest(db, blocked)
    planted = time.time()
    db.zadd(KEYS.due, {"planted-no-wake": planted})  # the producer that forgot its push
    try:
        found = wait_until(lambda: [v for v in wake_watcher.violations if v.redis_url == url] or None,
                           timeout=STARTUP + OVERDUE_LIMIT + 10, message="the watcher to report the planted entry")
        taken = wake_watcher.take(url)  # the test's own planted fault: not this test's failure at its teardown
        assert [(v.index, v.member) for v in taken] == [(KEYS.due, "planted-no-wake")], found
        assert taken[0].overdue > OVERDUE_LIMIT
        assert "'planted-no-wake' in fh:due" in str(taken[0]) and "no wake-up pending" in str(taken[0])
        # Still there as written: neither a sweep nor the guard had taken it when the watcher reported it.
        assert db.zscore(KEYS.due, "planted-no-wake") == planted
    finally:
        db.zrem(KEYS.due, "planted-no-wake")  # the next test's write is the first entry again, and pushes


def test_the_same_work_written_with_its_wake_up_is_reported_by_no_one(resting, wake_watcher):
    stack, db, blocked = resting
    url = stack.env["REDIS_URL"]
    _at_rest(db, blocked)
    written = time.time()
    LuaScript(db, "sweep_index_add")([KEYS.due, KEYS.sweep_added], [repr(written), "written-with-wake"])

    # Judged for longer than the limit after the write, counted from the watcher's first judgement of this worker on.
    wait_until(lambda: wake_watcher.judged_past_limit(url, written), timeout=STARTUP + OVERDUE_LIMIT + 10,
               message="the watcher to judge the stack past the limit")
    assert wake_watcher.take(url) == []
    # A sweeper woke and took it: claimed a lease ahead, or already checked and dropped (no job has that id).
    score = db.zscore(KEYS.due, "written-with-wake")
    assert score is None or score > written, score
