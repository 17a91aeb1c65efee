"""Open streams per caller (store/streams.py) on a real Redis: the limit holds over any number of processes, a
closed stream gives its place back, and a lease its process stopped renewing lapses."""

from __future__ import annotations

import threading

from fluxhook.core.holds import STREAM_LEASE
from fluxhook.store.keys import Keys
from fluxhook.store.streams import StreamLeases

KEYS = Keys(prefix="streams-test:")


def test_a_caller_holds_at_most_its_limit_and_another_caller_is_not_counted(connection):
    leases = StreamLeases(connection, keys=KEYS)
    assert all(leases.open("key_a", f"s{n}", 3) for n in range(3))
    assert not leases.open("key_a", "s3", 3)
    assert leases.open("key_b", "s0", 3)
    leases.close("key_a", "s1")
    assert leases.open("key_a", "s4", 3) and not leases.open("key_a", "s5", 3)  # it held 2


def test_the_limit_holds_when_many_open_at_once(connection):
    leases = StreamLeases(connection, keys=KEYS)
    opened: list[bool] = []
    threads = [threading.Thread(target=lambda n=n: opened.append(leases.open("key_a", f"s{n}", 5))) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert opened.count(True) == 5 and not leases.open("key_a", "late", 5)


def test_a_lease_not_renewed_lapses_and_a_renewed_one_lives_on(connection):
    now = [1000.0]
    leases = StreamLeases(connection, keys=KEYS, clock=lambda: now[0])
    assert leases.open("key_a", "kept", 2) and leases.open("key_a", "lost", 2)
    now[0] += STREAM_LEASE - 1
    leases.renew([("key_a", "kept")])
    now[0] += 2  # past the end of the lease never renewed (its process died)
    assert leases.open("key_a", "new", 2)
    leases.close("key_a", "gone-already")  # a lease given back twice, or never held: nothing happens
    assert not leases.open("key_a", "third", 2)  # "kept" and "new" hold both places
