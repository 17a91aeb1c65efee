"""A notification message's send (fluxhook/lifecycle/delivering.py), in-process on database 11 against a real HTTP
receiver on 127.0.0.1: each attempt kept, retries and their delays, Retry-After, 410 disabling a target, a host no
longer allowed. Making the messages: test_notifications.py."""

from __future__ import annotations

import time

from devtools.processes import free_port
from fluxhook.core import transitions as st
from fluxhook.core.notify_answers import NOTIFY_RETRIES
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import delivering, notifications
from fluxhook.lifecycle.notifications import move_due
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.sweep import drain_notifications
from fluxhook.store.keys import KEYS
from notify_helpers import notified_job


def _ended(svc, url: str):
    """A job ended with ``url`` as its notify_url, and its job.ended message made."""
    job = notified_job(svc, url)
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    drain_notifications(svc, time.time())
    return job, f"msg_{job.id}"


def test_an_attempt_skips_a_deleted_job_and_fails_a_host_no_longer_allowed(notifying, receivers, hooks):
    svc = notifying()
    job, message = _ended(svc, receivers[0].url())
    svc.jobs.delete(job.id)
    assert delivering.deliver(svc, message) == DeliveryOutcome.SKIPPED
    remove_job(svc, job.id)
    assert svc.store.deliveries.get(message) is None  # the job's messages go with it
    assert not svc.redis.exists(KEYS.job(job.id))  # not recreated

    moved, message = _ended(svc, "http://127.0.0.1:1/was-allowed-once")
    assert delivering.deliver(svc, message) == DeliveryOutcome.HOST_NOT_ALLOWED
    assert svc.store.deliveries.get(message).state == "failed" and hooks.of_job(moved.id) == []


def test_each_attempt_is_kept_and_a_failure_waits_for_its_next_attempt(notifying, receivers, hooks):
    svc = notifying()
    job, message = _ended(svc, receivers[0].url())
    hooks.failures = 1
    before = time.time()
    assert delivering.deliver(svc, message) == DeliveryOutcome.RETRY
    kept = svc.store.deliveries.get(message)
    assert kept.state == "pending" and kept.tries == 1
    [(at, status, error, ms)] = kept.attempts
    assert status == 500 and error is None and ms >= 0 and before - 0.01 <= at
    due = svc.redis.zscore(KEYS.messages_due, kept.member)
    assert before + 1 <= due <= time.time() + 2  # the first retry: 1-2 s later
    assert svc.jobs.get(job.id).notified_at is None
    # Due: the sweep puts it back in line; the next attempt delivers it.
    assert move_due(svc, due + 0.1) == 1 and svc.redis.zcard(KEYS.messages_due) == 0
    assert delivering.deliver(svc, message) == DeliveryOutcome.DELIVERED
    kept = svc.store.deliveries.get(message)
    assert kept.state == "delivered" and [a[1] for a in kept.attempts] == [500, 200]
    assert svc.jobs.get(job.id).notified_at is not None
    assert delivering.deliver(svc, message) == DeliveryOutcome.SKIPPED  # delivered: never sent again
    assert [d.headers["webhook-id"] for d in hooks.of_job(job.id)] == [message, message]


def test_a_message_fails_after_its_last_retry(notifying, receivers, hooks):
    svc = notifying()
    _, message = _ended(svc, receivers[0].url())
    svc.redis.hset(KEYS.message(message), "tries", NOTIFY_RETRIES)
    hooks.failures = 1
    assert delivering.deliver(svc, message) == DeliveryOutcome.EXHAUSTED
    kept = svc.store.deliveries.get(message)
    assert kept.state == "failed" and svc.redis.zscore(KEYS.messages_due, kept.member) is None


def test_retry_after_delays_the_next_attempt_at_least_that_long(notifying, receivers, hooks):
    svc = notifying()
    hooks.statuses["/slow"], hooks.retry_after["/slow"] = 503, "600"
    _, message = _ended(svc, receivers[0].url("/slow"))
    assert delivering.deliver(svc, message) == DeliveryOutcome.RETRY
    due = svc.redis.zscore(KEYS.messages_due, svc.store.deliveries.get(message).member)
    assert due >= time.time() + 590


def test_410_disables_the_target_for_that_key_until_it_is_enabled(notifying, receivers, hooks):
    svc = notifying()
    hooks.statuses["/gone"] = 410
    _, first = _ended(svc, receivers[0].url("/gone"))
    assert delivering.deliver(svc, first) == DeliveryOutcome.DISABLED
    assert svc.store.deliveries.get(first).state == "disabled"
    _, later = _ended(svc, receivers[0].url("/gone"))
    assert svc.store.deliveries.get(later).state == "disabled"  # kept, never sent
    _, elsewhere = _ended(svc, receivers[0].url("/other"))
    assert svc.store.deliveries.get(elsewhere).state == "pending"  # another target is not disabled
    assert [d.path for d in hooks.deliveries].count("/gone") == 1
    assert notifications.enable(svc, None) == 1
    _, again = _ended(svc, receivers[0].url("/gone"))
    assert svc.store.deliveries.get(again).state == "pending"


def test_an_unreachable_app_is_retried_with_the_error_kept(notifying):
    port = free_port()  # nothing listens there
    svc = notifying(NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{port}", NOTIFY_URL=f"http://127.0.0.1:{port}/h")
    _, message = _ended(svc, f"http://127.0.0.1:{port}/h")
    assert delivering.deliver(svc, message) == DeliveryOutcome.RETRY
    [(_, status, error, _)] = svc.store.deliveries.get(message).attempts
    assert status is None and error == "ConnectionError"
