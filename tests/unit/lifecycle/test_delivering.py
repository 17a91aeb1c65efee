"""A notification message's send (fluxhook/lifecycle/delivering.py), in-process on database 11 against a real HTTP
receiver on 127.0.0.1: each attempt kept, retries and their delays, Retry-After, 410 disabling a target, a host no
longer allowed, a receiver that trickles its answer cut at the attempt's deadline, an attempt that outlived its lease
answered 2xx. Making the messages and the rule that hands out attempts: test_notifications.py,
tests/unit/store/test_deliveries_room.py."""

from __future__ import annotations

import time

from devtools.processes import free_port
from devtools.slow_receivers import SILENT, TRICKLE, SlowReceiver
from fluxhook.core import job as st
from fluxhook.core.notify_rules import NOTIFY_RETRIES
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import delivering, notifications
from fluxhook.lifecycle.notifications import due_attempts
from fluxhook.lifecycle.removal import remove_job
from fluxhook.store.deliveries import IN_FLIGHT, Attempt, member_message
from fluxhook.store.keys import KEYS
from notify_helpers import notified_job


def _ended(svc, url: str):
    """A job ended with ``url`` as its notify_url, its job.ended message made, and its first attempt taken: the job
    and the attempt (what ``deliver`` takes)."""
    job = notified_job(svc, url)
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    [attempt] = due_attempts(svc, 8)
    assert member_message(attempt.member) == f"msg_{job.id}"
    return job, attempt


def _due(svc, attempt: Attempt) -> float | None:
    return svc.redis.zscore(KEYS.notify_due, attempt.member)


def test_an_attempt_skips_a_deleted_job_and_fails_a_host_no_longer_allowed(notifying, receivers, hooks):
    svc = notifying()
    job, member = _ended(svc, receivers[0].url())
    svc.jobs.delete(job.id)
    assert delivering.deliver(svc, member) == DeliveryOutcome.SKIPPED
    remove_job(svc, job.id)
    assert svc.store.deliveries.get(member_message(member.member)) is None  # the job's messages go with it
    assert not svc.redis.exists(KEYS.job(job.id))  # not recreated
    assert _due(svc, member) is None and not svc.redis.exists(KEYS.notify_busy)  # nothing waits, nothing held

    moved, member = _ended(svc, "http://127.0.0.1:1/was-allowed-once")
    assert delivering.deliver(svc, member) == DeliveryOutcome.HOST_NOT_ALLOWED
    assert svc.store.deliveries.get(member_message(member.member)).state == "failed" and hooks.of_job(moved.id) == []
    assert _due(svc, member) is None and not svc.redis.exists(KEYS.notify_busy)


def test_each_attempt_is_kept_and_a_failure_waits_for_its_next_attempt(notifying, receivers, hooks):
    svc = notifying()
    job, member = _ended(svc, receivers[0].url())
    message, message_member = member_message(member.member), member.member
    hooks.failures = 1
    before = time.time()
    assert delivering.deliver(svc, member) == DeliveryOutcome.RETRY
    kept = svc.store.deliveries.get(message)
    assert kept.state == "pending" and kept.tries == 1
    [(at, status, error, ms)] = kept.attempts
    assert status == 500 and error is None and ms >= 0 and before - 0.01 <= at
    due = _due(svc, member)
    assert before + 1 <= due <= time.time() + 2  # the first retry: 1-2 s later, in the same set as a first attempt
    assert svc.jobs.get(job.id).notified_at is None
    assert due_attempts(svc, 8, now=due - 0.1) == []  # not before its time
    [member] = due_attempts(svc, 8, now=due + 0.1)
    assert member.member == message_member
    assert delivering.deliver(svc, member) == DeliveryOutcome.DELIVERED
    kept = svc.store.deliveries.get(message)
    assert kept.state == "delivered" and [a[1] for a in kept.attempts] == [500, 200]
    assert svc.jobs.get(job.id).notified_at is not None and _due(svc, member) is None
    assert delivering.deliver(svc, member) == DeliveryOutcome.SKIPPED  # delivered: never sent again
    assert [d.headers["webhook-id"] for d in hooks.of_job(job.id)] == [message, message]


def test_a_message_fails_after_its_last_retry(notifying, receivers, hooks):
    svc = notifying()
    _, member = _ended(svc, receivers[0].url())
    svc.redis.hset(KEYS.message(member_message(member.member)), "tries", NOTIFY_RETRIES)
    hooks.failures = 1
    assert delivering.deliver(svc, member) == DeliveryOutcome.EXHAUSTED
    kept = svc.store.deliveries.get(member_message(member.member))
    assert kept.state == "failed" and _due(svc, member) is None


def test_retry_after_delays_the_next_attempt_at_least_that_long(notifying, receivers, hooks):
    svc = notifying()
    hooks.statuses["/slow"], hooks.retry_after["/slow"] = 503, "600"
    _, member = _ended(svc, receivers[0].url("/slow"))
    assert delivering.deliver(svc, member) == DeliveryOutcome.RETRY
    assert _due(svc, member) >= time.time() + 590


def test_410_disables_the_target_for_that_key_until_it_is_enabled(notifying, receivers, hooks):
    svc = notifying()
    hooks.statuses["/gone"] = 410
    _, first = _ended(svc, receivers[0].url("/gone"))
    assert delivering.deliver(svc, first) == DeliveryOutcome.DISABLED
    assert svc.store.deliveries.get(member_message(first.member)).state == "disabled"
    later = notified_job(svc, receivers[0].url("/gone"))
    svc.jobs.transition(later.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert due_attempts(svc, 8) == []  # made disabled: never due
    assert svc.store.deliveries.get(f"msg_{later.id}").state == "disabled"  # kept, never sent
    _, elsewhere = _ended(svc, receivers[0].url("/other"))
    assert svc.store.deliveries.get(member_message(elsewhere.member)).state == "pending"  # another target is not disabled
    assert [d.path for d in hooks.deliveries].count("/gone") == 1
    assert notifications.enable(svc, None) == 1
    _, again = _ended(svc, receivers[0].url("/gone"))
    assert svc.store.deliveries.get(member_message(again.member)).state == "pending"


def test_an_unreachable_app_is_retried_with_the_error_kept(notifying):
    port = free_port()  # nothing listens there
    svc = notifying(NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{port}", NOTIFY_URL=f"http://127.0.0.1:{port}/h")
    _, member = _ended(svc, f"http://127.0.0.1:{port}/h")
    assert delivering.deliver(svc, member) == DeliveryOutcome.RETRY
    [(_, status, error, _)] = svc.store.deliveries.get(member_message(member.member)).attempts
    assert status is None and error == "ConnectionError"


def test_a_receiver_that_trickles_or_never_answers_is_cut_at_the_attempts_deadline_and_retried(notifying, monkeypatch):
    # The deadline shortened for the test; tests/unit/net/test_deadlines.py holds the mechanism to it.
    monkeypatch.setattr(delivering, "ATTEMPT_DEADLINE", 1.0)
    for mode in (TRICKLE, SILENT):
        slow = SlowReceiver(mode, every=0.2)
        svc = notifying(NOTIFY_HOST_ALLOWLIST=slow.host, NOTIFY_URL=slow.url())
        _, member = _ended(svc, slow.url())
        started = time.monotonic()
        assert delivering.deliver(svc, member) == DeliveryOutcome.RETRY
        assert 1.0 <= time.monotonic() - started < 3.0  # a read timeout of 15 s would have let the trickle run on
        [(_, status, error, _)] = svc.store.deliveries.get(member_message(member.member)).attempts
        assert status is None and "1 s" in error and "," not in error  # a 200 head cut short is no 200
        assert slow.wait_closed(5) and slow.requests == 1
        assert _due(svc, member) > time.time() and not svc.redis.exists(KEYS.notify_busy)  # room given back
        slow.stop()


def test_an_attempt_that_outlived_its_lease_and_was_answered_2xx_leaves_the_newer_one_held_and_is_not_sent_again(
        notifying, receivers, hooks):
    svc = notifying()
    job, stalled = _ended(svc, receivers[0].url())
    [newer] = due_attempts(svc, 8, now=float(stalled.lease) + 1)  # lapsed: another process takes it again
    assert delivering.deliver(svc, stalled) == DeliveryOutcome.DELIVERED  # the stalled attempt goes on: a 200
    assert svc.redis.hget(KEYS.notify_busy, IN_FLIGHT + newer.member).decode() == newer.lease  # still the newer's
    assert svc.store.deliveries.get(f"msg_{job.id}").state == "delivered"
    assert delivering.deliver(svc, newer) == DeliveryOutcome.SKIPPED  # the receiver has it: not sent again
    assert len(hooks.of_job(job.id)) == 1 and svc.jobs.get(job.id).notified_at is not None
    assert _due(svc, newer) is None and not svc.redis.exists(KEYS.notify_busy)
