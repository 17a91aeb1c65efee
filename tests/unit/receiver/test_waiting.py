"""Waiting reads in a web process (receiver/waiting.py): past its room a process answers at once, and a waiter wakes on
the announcement of its job's change, on a real Redis."""

from __future__ import annotations

import threading
import time


def test_past_its_room_a_process_answers_at_once_and_a_waiter_wakes_on_the_announcement(redis_server):
    import redis
    from flask import Flask

    from fluxhook.store.job_changes import JobChanges
    from fluxhook.store.keys import KEYS
    from receiver.waiting import Waiters

    connection = redis.Redis.from_url(redis_server.url)
    waiters = Waiters(JobChanges(connection), capacity=1)
    app = Flask(__name__)
    asked, done, results = threading.Event(), threading.Event(), []

    def first():
        def finished():
            asked.set()
            return done.is_set()
        with app.test_request_context():
            started = time.monotonic()
            results.append((waiters.wait("job_first", 20, finished), time.monotonic() - started))

    thread = threading.Thread(target=first)
    thread.start()
    assert asked.wait(5)
    with app.test_request_context():
        assert waiters.wait("job_second", 20, lambda: False) is False  # no room: answered at once
    done.set()
    connection.publish(KEYS.job_changes, "job_first")
    thread.join(timeout=10)
    waited, took = results[0]
    assert waited is True and took < 20  # woken by the announcement, not by the end of its wait
    waiters.changes.close()
