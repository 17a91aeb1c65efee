"""Work permits handed between callers in turns (receiver/fair_permits.py). Under load, over HTTP, with two keys:
tests/e2e/api/test_web_fair_share.py."""

from __future__ import annotations

import threading

from devtools.processes import wait_until
from receiver.fair_permits import FairPermits


class Requests:
    """Threads that each take a permit in a lane, note their turn, and hold it until let go."""

    def __init__(self, permits: FairPermits):
        self.permits = permits
        self.order: list[str] = []
        self.go = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, lane: str, name: str, weight: int = 1) -> None:
        waiting = self.permits.waiting(lane)

        def run():
            self.permits.acquire(lane, weight)
            self.order.append(name)
            self.permits.release(lane)

        self.threads.append(threading.Thread(target=run, daemon=True))
        self.threads[-1].start()
        wait_until(lambda: self.permits.waiting(lane) == waiting + 1, timeout=5, message=f"{name} in line")

    def finish(self) -> list[str]:
        for thread in self.threads:
            thread.join(timeout=5)
        return self.order


def test_one_callers_requests_go_in_the_order_they_came():
    permits = FairPermits(1)
    permits.acquire("other", 1)  # the only permit, held by someone else
    requests = Requests(permits)
    for n in range(5):
        requests.start("key:a", f"a{n}")
    permits.release("other")
    assert requests.finish() == ["a0", "a1", "a2", "a3", "a4"]


def test_a_caller_with_a_hundred_waiting_delays_anothers_request_by_one_turn():
    permits = FairPermits(1)
    permits.acquire("other", 1)
    requests = Requests(permits)
    for n in range(100):
        requests.start("key:a", f"a{n}")
    requests.start("key:b", "b0")  # arrives after A's hundred
    permits.release("other")
    order = requests.finish()
    assert order.index("b0") == 1  # A's turn (one request), then B's
    assert [name for name in order if name != "b0"] == [f"a{n}" for n in range(100)]


def test_a_heavier_key_gets_permits_in_proportion_to_its_weight():
    permits = FairPermits(1)
    permits.acquire("other", 1)
    requests = Requests(permits)
    for n in range(4):
        requests.start("key:a", f"a{n}", weight=2)
    for n in range(4):
        requests.start("key:b", f"b{n}")
    permits.release("other")
    order = requests.finish()
    # A's permits cost it 1/2 a turn each, B's 1: while both wait, two of A's to each of B's (fluxhook.core.fair_turns;
    # the tie at the start goes to A's earlier request).
    assert order == ["a0", "b0", "a1", "a2", "b1", "a3", "b2", "b3"]
    assert [name[0] for name in order[:6]].count("a") == 4


def test_a_caller_holds_at_most_half_the_permits_so_another_finds_one_at_once():
    permits = FairPermits(4)
    permits.acquire("key:a", 1)
    permits.acquire("key:a", 1)  # A's two long searches
    requests = Requests(permits)
    requests.start("key:a", "a-third")  # waits though two permits are free: A holds its half
    assert permits.held("key:a") == 2
    got = threading.Event()
    threading.Thread(target=lambda: (permits.acquire("key:b", 1), got.set()), daemon=True).start()
    assert got.wait(5), "B waited behind A's long requests"
    assert permits.waiting("key:a") == 1
    permits.release("key:a")
    assert requests.finish() == ["a-third"]
    permits.release("key:b")
    permits.release("key:a")
    assert permits.held("key:a") == 0 and permits.held("key:b") == 0


def test_a_free_permit_is_taken_at_once_when_nobody_waits():
    permits = FairPermits(2)
    permits.acquire("key:a", 1)
    permits.acquire("bfl", 1)
    assert (permits.held("key:a"), permits.held("bfl")) == (1, 1)
    permits.release("key:a")
    permits.release("bfl")
    assert (permits.held("key:a"), permits.held("bfl")) == (0, 0)
