"""Notifications to the user's app (fluxhook/lifecycle/notifications.py): the outbox and the task in-process
(database 11) against a real HTTP receiver on 127.0.0.1, and the pure parts: signing (checked with
``standardwebhooks``, the Standard Webhooks reference library), answers, the retry schedule, configuration.
End to end on a stack of its own: tests/e2e/api/test_notifications.py.
"""

from __future__ import annotations

import base64
import os
import time

import pytest

from devtools.processes import free_port
from fluxhook.core import transitions as st
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, InvalidRequest
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.notify_answers import NOTIFY_RETRIES
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import delivering, notifications
from fluxhook.lifecycle.notifications import move_due
from fluxhook.lifecycle.removal import remove_job
from fluxhook.lifecycle.steps.enqueueing import feed, notify_task_id
from fluxhook.lifecycle.sweep import drain_notifications
from fluxhook.store.keys import KEYS
from fluxhook.store.work_lines import NOTIFY
from notify_helpers import SECRET, Receiver, fresh, receiving

# -- a receiver of notifications: a real HTTP server that records every POST ---------------------

@pytest.fixture(scope="module")
def receivers():
    """The default NOTIFY_URL's receiver."""
    with receiving(1) as made:
        yield made


@pytest.fixture()
def hooks(receivers) -> Receiver:
    return fresh(receivers[0])


# -- the outbox and the task, in-process on database 11 --------------------------------------------

@pytest.fixture()
def services(make_services, receivers):
    def build(**overrides):
        notifications = {"NOTIFY_URL": receivers[0].url(), "NOTIFY_SECRET": SECRET,
                         "NOTIFY_HOST_ALLOWLIST": f"127.0.0.1:{receivers[0].port}"}
        return make_services(11, **{**notifications, **overrides})

    return build


def _job(svc, notify_url: str | None) -> Job:
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.SUBMITTED, bfl_id=f"task-{new_job_id()}",
                                 created_at=now, updated_at=now, submitted_at=now, notify_url=notify_url))
    return job


def _outbox(svc) -> list[str]:
    return [i.decode() for i in svc.redis.zrange(KEYS.outbox, 0, -1)]


def test_a_job_enters_the_outbox_in_the_transition_that_ends_it(services, receivers):
    svc = services()
    notified, silent = _job(svc, receivers[0].url()), _job(svc, None)
    assert svc.jobs.transition(notified.id, st.READY, bfl_status="Ready", result_url="https://x/y.png")
    assert svc.jobs.transition(silent.id, st.FAILED, error={"code": "bfl_error", "message": "x"})
    assert _outbox(svc) == []  # ready is not the end; a job without notify_url has nobody to tell
    assert svc.jobs.transition(notified.id, st.FAILED, error={"code": "download_failed", "message": "x"})
    assert _outbox(svc) == [notified.id]
    # A late event for the ended job changes nothing, and adds nothing.
    svc.redis.zrem(KEYS.outbox, notified.id)
    assert not svc.jobs.transition(notified.id, st.STORED)
    assert _outbox(svc) == []
    # Deleting a job takes it out of the outbox too.
    other = _job(svc, receivers[0].url())
    svc.jobs.transition(other.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(other.id)
    assert _outbox(svc) == []


def test_a_drain_makes_one_message_per_job_even_when_repeated(services, receivers):
    svc = services()
    jobs = [_job(svc, receivers[0].url()) for _ in range(3)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert drain_notifications(svc, now) == 3
    assert _outbox(svc) == [] and svc.store.work.waiting(NOTIFY) == 3
    assert [m.id for j in jobs for m in svc.store.deliveries.of_job(j.id)] == [f"msg_{j.id}" for j in jobs]
    assert feed(svc) == 3  # from the notify line into RQ, each task naming its message
    tasks = svc.queue.get_jobs()
    assert sorted(t.id for t in tasks) == sorted(notify_task_id(f"msg_{j.id}") for j in jobs)
    assert {t.func_name for t in tasks} == {"worker.notify.notify_job"}
    assert all(t.timeout <= 60 for t in tasks)
    # A crash after keeping the messages but before the outbox was emptied: the ids come back; no second message.
    svc.redis.zadd(KEYS.outbox, {j.id: now for j in jobs})
    assert drain_notifications(svc, now + 1) == 0
    assert _outbox(svc) == [] and svc.store.work.waiting(NOTIFY) == 0
    assert all(len(svc.store.deliveries.of_job(j.id)) == 1 for j in jobs)


def test_two_drains_never_take_the_same_job(services, receivers):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert svc.jobs.claim_notifications(now, 10, now + 60) == [job.id]
    assert svc.jobs.claim_notifications(now, 10, now + 60) == []  # held by the first
    # Nobody queued it (a crash): it is taken again once the lease is over.
    assert svc.jobs.claim_notifications(now + 61, 10, now + 121) == [job.id]


def _ended(svc, url: str):
    """A job ended with ``url`` as its notify_url, and its job.ended message made."""
    job = _job(svc, url)
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    drain_notifications(svc, time.time())
    return job, f"msg_{job.id}"


def test_an_attempt_skips_a_deleted_job_and_fails_a_host_no_longer_allowed(services, receivers, hooks):
    svc = services()
    job, message = _ended(svc, receivers[0].url())
    svc.jobs.delete(job.id)
    assert delivering.deliver(svc, message) == DeliveryOutcome.SKIPPED
    remove_job(svc, job.id)
    assert svc.store.deliveries.get(message) is None  # the job's messages go with it
    assert not svc.redis.exists(KEYS.job(job.id))  # not recreated

    moved, message = _ended(svc, "http://127.0.0.1:1/was-allowed-once")
    assert delivering.deliver(svc, message) == DeliveryOutcome.HOST_NOT_ALLOWED
    assert svc.store.deliveries.get(message).state == "failed" and hooks.of_job(moved.id) == []


def test_each_attempt_is_kept_and_a_failure_waits_for_its_next_attempt(services, receivers, hooks):
    svc = services()
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


def test_a_message_fails_after_its_last_retry(services, receivers, hooks):
    svc = services()
    _, message = _ended(svc, receivers[0].url())
    svc.redis.hset(KEYS.message(message), "tries", NOTIFY_RETRIES)
    hooks.failures = 1
    assert delivering.deliver(svc, message) == DeliveryOutcome.EXHAUSTED
    kept = svc.store.deliveries.get(message)
    assert kept.state == "failed" and svc.redis.zscore(KEYS.messages_due, kept.member) is None


def test_retry_after_delays_the_next_attempt_at_least_that_long(services, receivers, hooks):
    svc = services()
    hooks.statuses["/slow"], hooks.retry_after["/slow"] = 503, "600"
    _, message = _ended(svc, receivers[0].url("/slow"))
    assert delivering.deliver(svc, message) == DeliveryOutcome.RETRY
    due = svc.redis.zscore(KEYS.messages_due, svc.store.deliveries.get(message).member)
    assert due >= time.time() + 590


def test_410_disables_the_target_for_that_key_until_it_is_enabled(services, receivers, hooks):
    svc = services()
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


def test_an_unreachable_app_is_retried_with_the_error_kept(services):
    port = free_port()  # nothing listens there
    svc = services(NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{port}", NOTIFY_URL=f"http://127.0.0.1:{port}/h")
    _, message = _ended(svc, f"http://127.0.0.1:{port}/h")
    assert delivering.deliver(svc, message) == DeliveryOutcome.RETRY
    [(_, status, error, _)] = svc.store.deliveries.get(message).attempts
    assert status is None and error == "ConnectionError"


def test_events_asked_for_enter_the_outbox_and_progress_at_most_every_5_s(services, receivers):
    svc = services()
    now = time.time()
    job, _ = svc.jobs.create(Job(id=new_job_id(now), status=st.QUEUED, created_at=now, updated_at=now,
                                 notify_url=receivers[0].url()))
    svc.store.deliveries.ask_events(job.id, ("job.submitted", "job.progress"), "job.submitted")
    assert svc.jobs.transition(job.id, st.SUBMITTED, bfl_id=f"task-{job.id}", submitted_at=now)
    assert svc.jobs.update(job.id, progress=0.2) and svc.jobs.update(job.id, progress=0.3)
    assert sorted(_outbox(svc)) == [f"{job.id}|job.progress", f"{job.id}|job.submitted"]
    now = time.time()
    assert drain_notifications(svc, now) == 2
    ids = [m.id for m in svc.store.deliveries.of_job(job.id)]
    assert f"msg_{job.id}_submitted" in ids and any("_progress_" in i for i in ids)
    # Another change within 5 s waits in the outbox until the gap ends, then goes as the job is then.
    assert svc.jobs.update(job.id, progress=0.5)
    assert drain_notifications(svc, now + 1) == 0
    assert _outbox(svc) == [f"{job.id}|job.progress"]
    assert drain_notifications(svc, now + 5.1) == 1
    assert sum("_progress_" in m.id for m in svc.store.deliveries.of_job(job.id)) == 2
    # A job whose key asks for nothing beyond its end puts nothing else in the outbox.
    quiet = _job(svc, receivers[0].url())
    assert svc.jobs.update(quiet.id, progress=0.5) and _outbox(svc) == []


# -- configuration and the API's validation ------------------------------------------------------------

BASE = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "SECRET_KEY": "0123456789abcdef0123456789abcdef",
        "API_TOKENS": "token-aaaaaaaa"}


def _problems(**env) -> list[str]:
    with pytest.raises(ConfigError) as info:
        Config.from_env({**BASE, **env})
    return info.value.problems


def test_notifications_are_off_by_default():
    config = Config.from_env(BASE)
    assert (config.notify_url, config.notify_secret, config.notify_host_allowlist) == (None, None, ())


def test_notify_url_defaults_the_allowlist_to_its_host():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/hooks", "NOTIFY_SECRET": SECRET})
    assert config.notify_url == "https://app.example.com/hooks" and config.notify_secret == SECRET
    assert [str(p) for p in config.notify_host_allowlist] == ["app.example.com"]
    assert SECRET not in repr(config)


def test_notify_host_allowlist_uses_the_allowlist_syntax():
    config = Config.from_env({**BASE, "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "*.example.com, 127.0.0.1:9000"})
    assert [str(p) for p in config.notify_host_allowlist] == ["*.example.com", "127.0.0.1:9000"]
    assert config.notify_url is None


@pytest.mark.parametrize("env, variable, words", [
    ({"NOTIFY_URL": "https://app.example.com/h"}, "NOTIFY_SECRET", "required"),
    ({"NOTIFY_SECRET": "not-a-whsec-secret"}, "NOTIFY_SECRET", "whsec_"),
    ({"NOTIFY_SECRET": "whsec_" + base64.b64encode(b"short").decode()}, "NOTIFY_SECRET", "24 to 64"),
    ({"NOTIFY_SECRET": "whsec_not base64!!"}, "NOTIFY_SECRET", "base64"),
    ({"NOTIFY_URL": "ftp://app.example.com/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "http"),
    ({"NOTIFY_URL": "http://127.0.0.1:9000/h", "NOTIFY_SECRET": SECRET}, "NOTIFY_URL", "host:port"),
    ({"NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
      "NOTIFY_HOST_ALLOWLIST": "other.example.com"}, "NOTIFY_URL", "NOTIFY_HOST_ALLOWLIST"),
    ({"NOTIFY_HOST_ALLOWLIST": "*.com"}, "NOTIFY_HOST_ALLOWLIST", "wildcard"),
])
def test_each_bad_notify_setting_is_one_line_naming_it(env, variable, words):
    problems = _problems(**env)
    assert len(problems) == 1 and problems[0].startswith(f"{variable}: ") and words in problems[0], problems


def test_a_bad_notify_secret_is_not_repeated_in_the_problem_line():
    secret = "whsec_tooshortsecretvalue"
    assert not any(secret in line or "tooshortsecretvalue" in line for line in _problems(NOTIFY_SECRET=secret))


def test_unpadded_and_64_byte_secrets_are_accepted():
    unpadded = "whsec_" + base64.b64encode(os.urandom(25)).decode().rstrip("=")
    Config.from_env({**BASE, "NOTIFY_SECRET": unpadded})
    Config.from_env({**BASE, "NOTIFY_SECRET": "whsec_" + base64.b64encode(os.urandom(64)).decode()})
    assert "24 to 64" in _problems(NOTIFY_SECRET="whsec_" + base64.b64encode(os.urandom(65)).decode())[0]


def test_the_api_uses_the_default_unless_a_job_names_its_own():
    config = Config.from_env({**BASE, "NOTIFY_URL": "https://app.example.com/h", "NOTIFY_SECRET": SECRET,
                              "NOTIFY_HOST_ALLOWLIST": "app.example.com,*.hooks.example.com"})
    assert notifications.requested_url(None, config) == "https://app.example.com/h"
    assert notifications.requested_url("https://a.hooks.example.com/x?y=1", config) == "https://a.hooks.example.com/x?y=1"
    for bad in ("http://a.hooks.example.com/x", "https://a.b.hooks.example.com/", "https://evil.example.net/",
                "https://app.example.com:8443/", "ftp://app.example.com/", "", "https://app.example.com/a b", 7, [],
                "https://app.example.com/" + "x" * 2048):
        with pytest.raises(InvalidRequest):
            notifications.requested_url(bad, config)
    assert notifications.requested_url(None, Config.from_env(BASE)) is None
    with pytest.raises(InvalidRequest, match="NOTIFY_SECRET"):
        notifications.requested_url("https://app.example.com/h",
                                    Config.from_env({**BASE, "NOTIFY_HOST_ALLOWLIST": "app.example.com"}))


def test_a_job_s_progress_messages_are_bounded_and_its_end_still_goes(services, receivers):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.redis.hset(KEYS.job(job.id), "notify_progress", f"{notifications.MAX_MESSAGES_PER_JOB},{time.time() - 60}")
    assert notifications.enter(svc, [f"{job.id}|job.progress"], time.time()) == 0
    assert _outbox(svc) == []  # dropped, not kept for later
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert drain_notifications(svc, time.time() + 1) == 1
    assert svc.store.deliveries.get(f"msg_{job.id}").event == "job.ended"
