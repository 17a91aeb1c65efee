"""Announcements of job changes (store/job_changes.py, the fields announced in store/records.py, lua/job_transition.lua,
lua/job_record.lua) on a real Redis: one per real change of what a stream shows, none for a write that changes none
of it."""

from __future__ import annotations

import threading
import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.job_changes import JobChanges, Listener
from fluxhook.store.jobs import JobStore
from fluxhook.store.keys import Keys
from fluxhook.store.records import announced

KEYS = Keys(prefix="announce-test:")


@pytest.fixture()
def heard(connection):
    """The job ids announced on this test's channel, in order."""
    pubsub = connection.pubsub()
    pubsub.subscribe(KEYS.job_changes)
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"  # subscribed before anything is announced
    ids: list[str] = []

    def drain() -> list[str]:
        while (message := pubsub.get_message(timeout=0.2)) is not None:
            ids.append(message["data"].decode())
        return ids
    yield drain
    pubsub.close()


def test_announced_keeps_only_the_fields_a_stream_shows():
    assert announced(["bfl_status", "Pending", "result_url", "x", "progress", "0.5"]) == [
        "bfl_status", "Pending", "progress", "0.5"]
    assert announced(["result_url", "x", "source", "poll"]) == []


def test_each_real_change_is_announced_once_and_a_repeat_never(connection, heard):
    store = JobStore(connection, keys=KEYS)
    now = time.time()
    job, _ = store.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id="t1", created_at=now, updated_at=now))
    assert heard() == [job.id]  # made
    assert store.update(job.id, bfl_status="Pending")
    assert store.update(job.id, bfl_status="Pending", source="poll")  # BFL said the same again
    assert heard() == [job.id] * 2
    assert store.update(job.id, progress=0.4)
    assert store.update(job.id, progress=0.4)
    assert store.update(job.id, cost_credits=6.0)
    assert heard() == [job.id] * 4
    assert store.transition(job.id, st.READY, result_url="https://x/1.png")
    assert store.transition(job.id, st.STORED, image={"sha256": "a"})
    assert not store.transition(job.id, st.FAILED)  # refused: nothing changed
    assert heard() == [job.id] * 6


def test_every_listener_of_a_process_hears_each_announcement_on_one_subscription(connection):
    changes = JobChanges(connection, keys=KEYS)
    got: dict[str, list[str]] = {"a": [], "b": []}
    connected = {"a": threading.Event(), "b": threading.Event()}
    for name in got:
        changes.add(Listener(got[name].append, connected[name].set))
    assert connected["a"].wait(5) and connected["b"].wait(5)
    connection.publish(KEYS.job_changes, "job_x")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (got["a"] and got["b"]):
        time.sleep(0.02)
    assert got == {"a": ["job_x"], "b": ["job_x"]}
    assert connection.pubsub_numsub(KEYS.job_changes)[0][1] == 1
    changes.close()
