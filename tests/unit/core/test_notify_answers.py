"""The pure rules of notifications: what an answer means and when the next attempt goes
(fluxhook/core/notify_answers.py), the signature and headers (checked with ``standardwebhooks``, the Standard
Webhooks reference library), the webhook-ids and the body's shape (fluxhook/lifecycle/notifications.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from fluxhook.core.config import Config
from fluxhook.core.job import Job
from fluxhook.core.notify_answers import MAX_RETRY_AFTER, NOTIFY_RETRIES, next_delay, outcome_for
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import notifications
from fluxhook.store.deliveries import ids_of
from notify_helpers import SECRET

OTHER = "whsec_" + base64.b64encode(b"another-key-of-thirty-two-bytes!").decode()


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
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER).verify(body.encode(), headers)


def test_two_secrets_give_two_signatures_either_of_which_verifies():
    body, now = '{"a":1}', int(time.time())
    headers = notifications.signed_headers([SECRET, OTHER], "msg_job_y", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OTHER):
        assert Webhook(secret).verify(body.encode(), headers) == {"a": 1}


def test_each_message_has_its_own_webhook_id_and_the_end_keeps_the_old_one():
    ids = {notifications.message_id("job_01ABC"), notifications.message_id("job_01ABC", "job.submitted"),
           notifications.message_id("job_01ABC", "job.progress", number=1),
           notifications.message_id("job_01ABC", "job.progress", number=2),
           notifications.message_id("job_01ABC", kind="bfl")}
    assert len(ids) == 5 and notifications.message_id("job_01ABC") == "msg_job_01ABC"
    assert ids == set(ids_of("job_01ABC", 2))  # the store finds a job's messages by these ids


def test_the_body_is_standard_webhooks_shape_around_the_job():
    config = Config.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "API_TOKENS": "t" * 16,
                              "SECRET_KEY": "0123456789abcdef0123456789abcdef"})
    job = Job(id="job_01ABC", status="failed", created_at=1.0, updated_at=2.0)
    body = json.loads(notifications.payload(config, job, "job.ended", 1764000000.25))
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "job.ended" and body["timestamp"] == "2025-11-24T16:00:00.250000Z"
    assert body["data"]["id"] == "job_01ABC" and body["data"]["status"] == "failed"


def test_one_message_per_distinct_target():
    both = Job(id="job_1", status="stored", notify_url="https://a.example/h", app_webhook_url="https://b.example/h")
    same = Job(id="job_2", status="stored", notify_url="https://a.example/h", app_webhook_url="https://a.example/h")
    assert notifications.targets(both, "job.ended") == [("bfl", "https://b.example/h"), ("webhook", "https://a.example/h")]
    assert notifications.targets(same, "job.ended") == [("bfl", "https://a.example/h")]
    assert notifications.targets(both, "job.progress") == [("webhook", "https://a.example/h")]


@pytest.mark.parametrize("status, outcome", [
    (200, DeliveryOutcome.DELIVERED), (201, DeliveryOutcome.DELIVERED), (204, DeliveryOutcome.DELIVERED),
    (408, DeliveryOutcome.RETRY), (429, DeliveryOutcome.RETRY), (500, DeliveryOutcome.RETRY),
    (502, DeliveryOutcome.RETRY), (503, DeliveryOutcome.RETRY),
    (410, DeliveryOutcome.DISABLED),
    (301, DeliveryOutcome.REJECTED), (302, DeliveryOutcome.REJECTED), (400, DeliveryOutcome.REJECTED),
    (401, DeliveryOutcome.REJECTED), (404, DeliveryOutcome.REJECTED), (422, DeliveryOutcome.REJECTED),
])
def test_what_an_answer_means(status, outcome):
    assert outcome_for(status) == outcome


class _Low(random.Random):
    """Every jittered delay at its shortest."""

    def uniform(self, a, b):
        return a


class _High(random.Random):
    def uniform(self, a, b):
        return b


def test_the_retry_schedule_starts_in_seconds_spans_over_an_hour_and_ends():
    shortest = [next_delay(n, 500, rng=_Low()) for n in range(1, NOTIFY_RETRIES + 1)]
    longest = [next_delay(n, 500, rng=_High()) for n in range(1, NOTIFY_RETRIES + 1)]
    assert longest[:3] == [2, 4, 8] and shortest[:3] == [1, 2, 4]
    assert 3600 < sum(shortest) and sum(longest) < 3 * 3600
    assert next_delay(NOTIFY_RETRIES + 1, 500) is None  # 14 attempts in all: then the message is failed


def test_retry_after_on_429_and_503_waits_at_least_that_long_and_at_most_30_minutes():
    assert next_delay(1, 503, "120", rng=_High()) == 120
    assert next_delay(1, 429, "120", rng=_High()) == 120
    assert next_delay(1, 503, "999999", rng=_High()) == MAX_RETRY_AFTER == 1800
    assert next_delay(1, 500, "120", rng=_High()) == 2  # only 429 and 503 ask to slow down
    assert next_delay(12, 503, "1", rng=_High()) == 1800  # never sooner than the schedule
    assert next_delay(1, 503, "Wed, 21 Oct 2015 07:28:00 GMT", rng=_High()) == 2
