"""A worker's background loop (worker/loops.py) outlives a Redis outage and a failure of its own step."""

from __future__ import annotations

import threading

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
