"""Short-lived locks in Redis (fluxhook/store/locks.py): one holder at a time, each lapsing by itself."""

from __future__ import annotations

import redis

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from fluxhook.store.locks import Locks

LOCK = KEYS.download_lock("job_01LOCKSTESTJOB000000000")


def test_a_lock_has_one_holder_until_it_is_released(connection):
    locks = Locks(connection)
    assert locks.holder(LOCK) is None and locks.seconds_left(LOCK) == 0.0

    assert locks.acquire(LOCK, "task-1", 60) is True
    assert locks.acquire(LOCK, "task-2", 60) is False  # held: the second to ask is told so, and changes nothing
    assert locks.holder(LOCK) == "task-1"
    assert 59 < locks.seconds_left(LOCK) <= 60

    locks.release(LOCK)
    assert locks.holder(LOCK) is None and locks.seconds_left(LOCK) == 0.0
    assert locks.acquire(LOCK, "task-2", 60) is True and locks.holder(LOCK) == "task-2"


def test_a_lock_lapses_by_itself(connection):
    """A process that dies holding a lock frees it: the lock expires."""
    locks = Locks(connection)
    assert locks.acquire(LOCK, "dies-holding-it", 1)
    wait_until(lambda: locks.holder(LOCK) is None, timeout=5, interval=0.05, message="the lock to lapse")
    assert locks.seconds_left(LOCK) == 0.0
    assert locks.acquire(LOCK, "next", 1)


def test_release_frees_whoever_holds_it_and_a_free_key_is_harmless(connection):
    locks = Locks(connection)
    locks.release(LOCK)  # nothing held: nothing happens
    assert locks.acquire(LOCK, "someone-else", 60)
    locks.release(LOCK)
    assert locks.holder(LOCK) is None


def test_the_holder_reads_as_text_whatever_the_connection_decodes(connection):
    kwargs = connection.connection_pool.connection_kwargs
    decoding = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0), decode_responses=True)
    try:
        assert Locks(connection).acquire(LOCK, "ünïcode-holder", 60)
        assert Locks(connection).holder(LOCK) == "ünïcode-holder"
        assert Locks(decoding).holder(LOCK) == "ünïcode-holder"
    finally:
        decoding.close()


def test_a_holder_frees_only_its_own_lock(connection):
    """A lock that lapsed, or was lost with a failed-over primary, and was taken by another since is not freed
    by its first holder's late release."""
    locks = Locks(connection)
    assert locks.acquire(LOCK, "first", 60)
    assert locks.release(LOCK, "second") is False and locks.holder(LOCK) == "first"
    assert locks.release(LOCK, "first") is True and locks.holder(LOCK) is None
    assert locks.release(LOCK, "first") is False  # nothing held: nothing happens
