"""A worker's background loop (worker/loops.py) outlives a Redis outage and a failure of its own step, and its stop
does not wait out a wait for work."""

from __future__ import annotations

import threading
import time

from redis.exceptions import ConnectionError as RedisConnectionError

from worker import loops


class _Flaky(loops.Loop):
    def __init__(self, failures: list[BaseException]):
        super().__init__("test-loop")
        self.failures = failures
        self.steps = 0
        self.ran_clean = threading.Event()

    def step(self) -> float:
        self.steps += 1
        if self.failures:
            raise self.failures.pop(0)
        self.ran_clean.set()
        return 0.01


def test_a_step_that_loses_redis_or_fails_is_logged_and_the_loop_goes_on(monkeypatch, caplog):
    monkeypatch.setattr(loops, "RETRY_INTERVAL", 0.01)
    loop = _Flaky([RedisConnectionError("reset by peer"), ValueError("a bug")])
    loop.start()
    try:
        assert loop.ran_clean.wait(5)
        assert loop.is_alive() and loop.steps >= 3
    finally:
        loop.request_stop()
        loop.join(5)
    assert not loop.is_alive()
    events = [r.getMessage() for r in caplog.records]
    assert "worker thread lost Redis; trying again" in events and "worker thread's step failed" in events


class _Waiting(loops.Loop):
    """A step that waits for work (as a BLPOP would) until the test lets it go, then works unless stopping."""

    def __init__(self):
        super().__init__("test-waiting-loop")
        self.gate = threading.Event()
        self.in_wait = threading.Event()
        self.worked = False

    def step(self) -> float:
        with self.waiting():
            self.in_wait.set()
            self.gate.wait(5)
        if not self.stopping:
            self.worked = True
        return 0.0


def test_a_stop_does_not_wait_out_a_wait_for_work_and_nothing_is_done_after_it():
    loop = _Waiting()
    loop.start()
    assert loop.in_wait.wait(5)
    started = time.monotonic()
    loop.stop(timeout=5)
    assert time.monotonic() - started < 0.5 and loop.is_alive()  # still in its wait, which holds nothing
    loop.gate.set()
    loop.join(5)
    assert not loop.is_alive() and not loop.worked
