"""A worker's record of work done elsewhere (fluxhook/lifecycle/steps/durable.py): kept through a Redis outage,
confirmed on the replicas when they are required (written again while the primary has none attached), and
never waited on past its patience. On the suite's Redis (which has no replica); a failover itself:
tests/e2e/faults/test_redis_failover.py."""

from __future__ import annotations

import pytest
import redis

from fluxhook.core.errors import FailedOver, NotReplicated, ReplicasMissing
from fluxhook.lifecycle.steps import durable

DB = 5


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(durable, "PAUSE_SECONDS", 0.0)


class Record:
    """A guarded write that fails ``failures`` times with Redis's error first."""

    def __init__(self, failures: int = 0, applies: bool = True):
        self.failures, self.applies, self.calls = failures, applies, 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.calls <= self.failures:
            raise redis.ConnectionError("the primary went away")
        return self.applies and self.calls == self.failures + 1


def test_a_record_is_written_again_once_redis_answers(make_services):
    svc = make_services(DB)
    record = Record(failures=2)
    assert durable.record_durably(svc, record) is True
    assert record.calls == 3


def test_past_its_patience_the_last_error_is_raised(make_services, monkeypatch):
    svc = make_services(DB)
    monkeypatch.setattr(durable, "PATIENCE_SECONDS", 0.0)
    with pytest.raises(redis.ConnectionError):
        durable.record_durably(svc, Record(failures=10**6))


def _confirming(svc, monkeypatch, *outcomes):
    """The replicas' confirmations, one per call: an error to raise, or None."""
    outcomes = iter(outcomes)

    def confirm(primary):
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(svc.store.replication, "confirm", confirm)


def test_a_slow_replica_is_waited_on_once(make_services, monkeypatch):
    """A replica attached but behind: one WAIT of REDIS_WAIT_MS, then the record stands as written (on a live
    primary)."""
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    _confirming(svc, monkeypatch, NotReplicated("behind"))
    record = Record()
    assert durable.record_durably(svc, record) is True
    assert record.calls == 1


def test_a_primary_without_its_replicas_is_not_taken_at_its_word(make_services, monkeypatch):
    """The old primary of a planned failover has no replica, and will drop what it took once the sentinels make it
    a replica: the record is run again (on the new primary by then) until the replicas confirm it."""
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    _confirming(svc, monkeypatch, ReplicasMissing("none attached"), FailedOver("moved"), ReplicasMissing("none"), None)
    record = Record()
    assert durable.record_durably(svc, record) is True
    assert record.calls == 4


def test_past_its_patience_a_record_without_replicas_stands_as_written(make_services, monkeypatch):
    """The suite's Redis has no replica: a replica lost and no failover. Nothing better than keeping the record."""
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    monkeypatch.setattr(durable, "PATIENCE_SECONDS", 0.2)
    record = Record()
    assert durable.record_durably(svc, record) is True
    assert record.calls > 1


def test_after_a_failover_the_record_is_written_on_the_new_primary(make_services, monkeypatch):
    """The first confirmation finds another primary: the record is run again there (a no-op if it got there)."""
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    _confirming(svc, monkeypatch, FailedOver("moved"), None)
    record = Record()
    assert durable.record_durably(svc, record) is True  # the first run applied it
    assert record.calls == 2


def test_sending_waits_for_nothing_without_replicas_required(make_services):
    svc = make_services(DB)
    assert durable.primary_before_reading(svc) is None
    durable.confirm_before_sending(svc, None)


def test_sending_is_refused_until_the_replicas_have_the_job(make_services):
    svc = make_services(DB, REDIS_MIN_REPLICAS="1", REDIS_WAIT_MS="50")
    primary = durable.primary_before_reading(svc)
    assert primary
    with pytest.raises(NotReplicated):
        durable.confirm_before_sending(svc, primary)
