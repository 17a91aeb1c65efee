"""Notifications to the user's app (fluxhook/lifecycle/notifications.py): the outbox and the task in-process
(database 11) against a real HTTP receiver on 127.0.0.1, and the pure parts: signing (checked with
``standardwebhooks``, the Standard Webhooks reference library), answers, the retry schedule, configuration.
End to end on a stack of its own: tests/e2e/api/test_notifications.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from devtools.processes import free_port
from fluxhook.core import transitions as st
from fluxhook.core.backoff import backoff_schedule
from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, InvalidRequest, RetryableError
from fluxhook.core.job import Job, new_job_id
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.steps.enqueueing import NOTIFY_RETRIES, NOTIFY_RETRY_CAP, feed, notify_retry, notify_task_id
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


def test_a_drain_queues_one_task_per_job_even_when_repeated(services, receivers):
    svc = services()
    jobs = [_job(svc, receivers[0].url()) for _ in range(3)]
    for job in jobs:
        svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert drain_notifications(svc, now) == 3
    assert _outbox(svc) == [] and svc.store.work.waiting(NOTIFY) == 3
    assert feed(svc) == 3  # from the notify line into RQ, each task naming its job
    tasks = svc.queue.get_jobs()
    assert sorted(t.id for t in tasks) == sorted(notify_task_id(j.id) for j in jobs)
    assert {t.func_name for t in tasks} == {"worker.notify.notify_job"}
    assert all(t.retries_left == NOTIFY_RETRIES and t.timeout <= 60 for t in tasks)
    # A crash after queueing but before the outbox was emptied: the ids come back; no second task.
    svc.redis.zadd(KEYS.outbox, {j.id: now for j in jobs})
    assert drain_notifications(svc, now + 1) == 0
    assert _outbox(svc) == [] and svc.queue.count == 3 and svc.store.work.waiting(NOTIFY) == 0


def test_two_drains_never_take_the_same_job(services, receivers):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    now = time.time()
    assert svc.jobs.claim_notifications(now, 10, now + 60) == [job.id]
    assert svc.jobs.claim_notifications(now, 10, now + 60) == []  # held by the first
    # Nobody queued it (a crash): it is taken again once the lease is over.
    assert svc.jobs.claim_notifications(now + 61, 10, now + 121) == [job.id]


def test_the_task_skips_a_deleted_job_and_refuses_a_host_no_longer_allowed(services, receivers, hooks):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    svc.jobs.delete(job.id)
    assert notifications.deliver(svc, job.id, last_attempt=False) == DeliveryOutcome.SKIPPED
    assert not svc.jobs.mark_notified(job.id, time.time())
    assert not svc.redis.exists(KEYS.job(job.id))  # not recreated

    moved = _job(svc, "http://127.0.0.1:1/was-allowed-once")
    svc.jobs.transition(moved.id, st.FAILED, error={"code": "timeout", "message": "x"})
    assert notifications.deliver(svc, moved.id, last_attempt=False) == DeliveryOutcome.HOST_NOT_ALLOWED
    assert hooks.for_job(moved.id) == []


def test_the_task_retries_while_the_app_fails_and_gives_up_on_the_last_attempt(services, receivers, hooks):
    svc = services()
    job = _job(svc, receivers[0].url())
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    hooks.failures = 2
    with pytest.raises(RetryableError):
        notifications.deliver(svc, job.id, last_attempt=False)
    assert notifications.deliver(svc, job.id, last_attempt=True) == DeliveryOutcome.EXHAUSTED
    assert svc.jobs.get(job.id).notified_at is None
    assert notifications.deliver(svc, job.id, last_attempt=False) == DeliveryOutcome.DELIVERED
    assert svc.jobs.get(job.id).notified_at is not None
    assert len(hooks.for_job(job.id)) == 3


def test_an_unreachable_app_is_retried(services):
    port = free_port()  # nothing listens there
    svc = services(NOTIFY_HOST_ALLOWLIST=f"127.0.0.1:{port}", NOTIFY_URL=f"http://127.0.0.1:{port}/h")
    job = _job(svc, f"http://127.0.0.1:{port}/h")
    svc.jobs.transition(job.id, st.FAILED, error={"code": "timeout", "message": "x"})
    with pytest.raises(RetryableError):
        notifications.deliver(svc, job.id, last_attempt=False)


# -- pure parts -------------------------------------------------------------------------------------

def test_signature_matches_the_standard_webhooks_test_vector():
    # The example of the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = notifications.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signed_headers_are_what_a_receiver_verifies():
    body = json.dumps({"id": "job_x", "status": "stored", "note": "ünïcode"}, ensure_ascii=False)
    now = int(time.time())
    headers = notifications.signed_headers([SECRET], "msg_job_x", now, body)
    assert headers["webhook-id"] == "msg_job_x" and headers["webhook-timestamp"] == str(now)
    version, signature = headers["webhook-signature"].split(",", 1)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = hmac.new(key, f"msg_job_x.{now}.{body}".encode(), hashlib.sha256).digest()
    assert version == "v1" and base64.b64decode(signature) == expected
    assert Webhook(SECRET).verify(body.encode(), headers)["note"] == "ünïcode"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("stored", "failed").encode(), headers)
    other = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body.encode(), headers)


def test_the_webhook_id_is_the_same_for_every_attempt():
    assert notifications.message_id("job_01ABC") == notifications.message_id("job_01ABC") == "msg_job_01ABC"
    assert datetime.fromtimestamp(0, timezone.utc).year == 1970  # timestamps are UTC epoch seconds


@pytest.mark.parametrize("status, outcome", [
    (200, DeliveryOutcome.DELIVERED), (201, DeliveryOutcome.DELIVERED), (204, DeliveryOutcome.DELIVERED),
    (408, DeliveryOutcome.RETRY), (429, DeliveryOutcome.RETRY), (500, DeliveryOutcome.RETRY), (502, DeliveryOutcome.RETRY),
    (503, DeliveryOutcome.RETRY),
    (301, DeliveryOutcome.REJECTED), (302, DeliveryOutcome.REJECTED), (400, DeliveryOutcome.REJECTED),
    (401, DeliveryOutcome.REJECTED), (404, DeliveryOutcome.REJECTED), (410, DeliveryOutcome.REJECTED),
    (422, DeliveryOutcome.REJECTED),
])
def test_what_an_answer_means(status, outcome):
    assert notifications.outcome_for(status) == outcome


class _Low(random.Random):
    """Every jittered delay at its shortest."""

    def uniform(self, a, b):
        return a


class _High(random.Random):
    def uniform(self, a, b):
        return b


def test_the_retry_schedule_starts_in_seconds_and_spans_over_an_hour():
    shortest = backoff_schedule(NOTIFY_RETRIES, base=2, cap=NOTIFY_RETRY_CAP, rng=_Low())
    longest = backoff_schedule(NOTIFY_RETRIES, base=2, cap=NOTIFY_RETRY_CAP, rng=_High())
    assert longest[:3] == [2, 4, 8] and shortest[:3] == [1, 2, 4]
    assert 3600 < sum(shortest) and sum(longest) < 3 * 3600
    for _ in range(50):
        retry = notify_retry()
        assert retry.max == NOTIFY_RETRIES and sum(retry.intervals) > 3600 and retry.intervals[0] <= 2


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
