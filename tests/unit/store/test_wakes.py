"""Wake-up lists (fluxhook/store/wakes.py): a push wakes one waiter, whichever list it waits on beside its process's
stop list; a stop ends as many waits as it names at once, and a wake-up taken while stopping is given back; the guard's
look pushes again the wake-up of a waiter at rest whose work is there, one command while nothing is."""

from __future__ import annotations

import threading
import time

from devtools.processes import wait_until
from fluxhook.store.keys import KEYS
from fluxhook.store.wakes import STOPPED, TIMEOUT, WORK, Wakes, Watched, push
from helpers import commands_during


def test_a_push_wakes_one_waiter_and_leaves_no_more_than_one_item(connection):
    wakes = Wakes(connection)
    for _ in range(3):
        push(connection, KEYS.notify_added)
    assert connection.llen(KEYS.notify_added) == 1
    assert [wakes.wait(KEYS.notify_added, 0.05) for _ in range(2)] == [WORK, TIMEOUT]


def test_a_stop_ends_each_of_its_process_s_waits_at_once_and_not_another_process_s(connection):
    wakes, other = Wakes(connection), Wakes(connection)
    ended: list[tuple[str, float]] = []
    started = time.monotonic()

    def wait(on: Wakes, key: str) -> None:
        ended.append((on.wait(key, 5.0), time.monotonic() - started))

    threads = [threading.Thread(target=wait, args=(wakes, key)) for key in (KEYS.work_added, KEYS.slot_freed)]
    threads.append(threading.Thread(target=wait, args=(other, KEYS.retry_added)))
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # all three block
    wakes.stop(2)
    for thread in threads[:2]:
        thread.join(2)
    assert [outcome for outcome, _ in ended] == [STOPPED, STOPPED] and all(at < 1.0 for _, at in ended)
    assert threads[2].is_alive()  # the other process's wait goes on
    wakes.give_back(KEYS.retry_added)  # a wake-up a stopping thread took, for another process
    threads[2].join(2)
    assert ended[-1][0] == WORK


def _resting(wakes: Wakes, key: str, watched: Watched, outcomes: list[str]) -> threading.Thread:
    """A waiter at rest on ``key`` in a thread of its own, watching ``watched``; its outcome goes to ``outcomes``."""
    blocked = wakes.connection.info("clients")["blocked_clients"]
    thread = threading.Thread(target=lambda: outcomes.append(wakes.wait(key, 5.0, watched)), daemon=True)
    thread.start()
    wait_until(lambda: wakes._resting and wakes.connection.info("clients")["blocked_clients"] > blocked, timeout=2,
               message="the waiter to rest")
    return thread


def test_the_guard_s_look_costs_nothing_with_no_waiter_at_rest_and_one_command_while_nothing_is_there(connection):
    wakes = Wakes(connection)
    db = connection.connection_pool.connection_kwargs["db"]

    def sent() -> list[str]:
        return [c["command"] for c in commands_during(connection, db, wakes.look)
                if not c["command"].startswith("SELECT")]

    assert sent() == []
    outcomes: list[str] = []
    lines = Watched(present=(KEYS.work_line("download"), KEYS.check_line()))
    thread = _resting(wakes, KEYS.work_added, lines, outcomes)
    try:
        assert sent() == [f"EXISTS {KEYS.check_line()} {KEYS.work_line('download')}"]
        assert outcomes == []
    finally:
        wakes.stop(1)
        thread.join(2)
    assert outcomes == [STOPPED] and not wakes._resting


def test_the_guard_s_look_wakes_a_waiter_at_rest_whose_work_came_with_no_wake_up(connection):
    wakes = Wakes(connection)
    outcomes: list[str] = []
    feeder = _resting(wakes, KEYS.work_added, Watched(present=(KEYS.work_line("download"),)), outcomes)
    checker = _resting(wakes, KEYS.check_added, Watched(present=(KEYS.check_line(),)), outcomes)
    # Work in a line, its wake-up lost (a primary that failed over, an older release's process).
    connection.zadd(KEYS.work_line("download"), {"key-a:job": 0})
    assert wakes.look() == [KEYS.work_added]
    feeder.join(2)
    assert outcomes == [WORK] and checker.is_alive()  # the other waiter's line holds nothing: it rests on
    wakes.stop(1)
    checker.join(2)


def test_a_waiter_that_knows_of_work_due_later_is_woken_for_an_entry_due_sooner(connection):
    wakes = Wakes(connection)
    outcomes: list[str] = []
    later = time.time() + 600
    connection.zadd(KEYS.notify_due, {"later": later})
    notifier = _resting(wakes, KEYS.notify_added, Watched(earlier=((KEYS.notify_due, later),)), outcomes)
    assert wakes.look() == []  # what it knows of is no news
    connection.zadd(KEYS.notify_due, {"sooner": time.time()})
    assert wakes.look() == [KEYS.notify_added]
    notifier.join(2)
    assert outcomes == [WORK]
