"""Wake-up lists (fluxhook/store/wakes.py): a push wakes one waiter, whichever list it waits on beside its process's
stop list; a stop ends as many waits as it names at once, and a wake-up taken while stopping is given back."""

from __future__ import annotations

import threading
import time

from fluxhook.store.keys import KEYS
from fluxhook.store.wakes import STOPPED, TIMEOUT, WORK, Wakes, push


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
