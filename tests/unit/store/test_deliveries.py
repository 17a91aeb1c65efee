"""Notification messages in Redis (fluxhook/store/deliveries.py) on a real Redis: a message stays one compact hash
whatever its attempts, keeps its newest 40 attempts in order, expires with its job, and an owner's index
is bounded."""

from __future__ import annotations

import pytest

from fluxhook.store import deliveries as store_module
from fluxhook.store.deliveries import DELIVERED, PENDING, Deliveries, Message, target_of
from fluxhook.store.keys import KEYS
from fluxhook.store.scripts import source


@pytest.fixture()
def store(connection) -> Deliveries:
    return Deliveries(connection)


def _message(n: int = 0, owner: str = "key_0123456789abcdef") -> Message:
    return Message(id=f"msg_job_{n:026d}", job_id=f"job_{n:026d}", owner=owner, event="job.ended", kind="webhook",
                   host="app.example.com:443", target=target_of("https://app.example.com/hooks?token=t"),
                   created_at=1_800_000_000.0 + n)


def _add(store: Deliveries, message: Message, ttl_ms: int | None = None) -> None:
    pipe = store.connection.pipeline(transaction=True)
    store.add(message, ttl_ms, pipe)
    pipe.execute()


def test_a_message_keeps_its_newest_attempts_in_order_in_one_compact_hash(store, connection):
    message = _message()
    _add(store, message, ttl_ms=60_000)
    record = KEYS.message(message.id)
    sizes = {}
    for n in range(45):
        sizes[n] = connection.memory_usage(record)
        kept = store.get(message.id)
        pipe = connection.pipeline(transaction=True)
        store.schedule([kept], 1_800_000_000.0 + n, pipe, wake=False)
        pipe.execute()
        [attempt] = store.take(1_800_000_000.0 + n, 1).attempts
        store.record(attempt, kept, (1_800_000_000.0 + n, 500 if n < 44 else 200, None, n),
                     PENDING if n < 44 else DELIVERED, None)
    kept = store.get(message.id)
    assert kept.state == DELIVERED and kept.count == kept.tries == 45 and len(kept.attempts) == store_module.MAX_ATTEMPTS
    assert [a[3] for a in kept.attempts] == list(range(5, 45))  # the oldest five went
    assert kept.attempts[-1] == (1_800_000_044.0, 200, None, 44)
    assert connection.object("encoding", record) in (b"listpack", b"ziplist")  # Redis's compact encoding
    # Delivered at once, and failed after its 14 attempts: what a message costs (its hash's bytes; 351 and 699
    # when measured).
    assert sizes[1] <= 384 and sizes[14] <= 768
    assert 0 < connection.pttl(record) <= 60_000  # it expires with its job
    assert b"https://" not in b"".join(v for pair in connection.hgetall(record).items() for v in pair)


def test_an_owner_s_index_keeps_its_newest_messages_only(store, connection, monkeypatch):
    monkeypatch.setattr(store_module, "OWNER_BOUND", 5)
    for n in range(8):
        _add(store, _message(n))
    index = KEYS.owner_messages("key_0123456789abcdef")
    assert connection.zcard(index) == 5
    found, read = store.of_owner("key_0123456789abcdef", 0, "+inf", 0, 10)
    assert [m.id for m in found] == [_message(n).id for n in range(7, 2, -1)] and read == 5
    assert [m.id for m in store.of_owner("key_0123456789abcdef", 0, "+inf", 3, 10)[0]] == [_message(4).id,
                                                                                           _message(3).id]
    # A message gone with its job leaves the index when it is met.
    connection.delete(KEYS.message(_message(7).id))
    assert store.of_owner("key_0123456789abcdef", 0, "+inf", 0, 10)[1] == 5  # read, the gone one among them
    assert len(store.of_owner("key_0123456789abcdef", 0, "+inf", 0, 10)[0]) == 4 and connection.zcard(index) == 4


def test_events_are_noted_on_many_jobs_with_a_command_or_two_each_and_a_submitted_ones_event_goes_now(store, connection):
    queued, submitted, gone = "job_queued", "job_submitted", "job_gone"
    connection.hset(KEYS.job(queued), mapping={"id": queued, "status": "queued"})
    connection.hset(KEYS.job(submitted), mapping={"id": submitted, "status": "submitted", "submitted_at": "1.5"})
    store.ask_events([gone], ("job.progress",), "job.submitted")  # its scripts loaded first: what follows is counted
    store.into_outbox({}, only_new=True)
    connection.script_load(source("outbox_add"))
    before = _calls(connection)

    store.ask_events([queued, submitted, gone], ("job.submitted", "job.progress"), "job.submitted")

    after = _calls(connection)
    assert {name: after[name] - before[name] for name in ("evalsha", "hget", "zadd", "lpush")} == {
        "evalsha": 4, "hget": 3, "zadd": 1, "lpush": 1}  # a note and a read a job, one step for them all, its wake
    assert connection.llen(KEYS.notify_added) == 1  # a notifier at rest is woken for it
    assert connection.hget(KEYS.job(queued), "notify_events") == b"job.submitted,job.progress"
    assert connection.hget(KEYS.job(submitted), "notify_events") == b"job.submitted,job.progress"
    assert not connection.exists(KEYS.job(gone))  # a record that is gone is not made
    assert [m.decode() for m in connection.zrange(KEYS.outbox, 0, -1)] == [f"{submitted}|job.submitted"]


def _calls(connection) -> dict[str, int]:
    stats = connection.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "hget", "zadd", "lpush")}
