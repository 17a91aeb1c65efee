"""fluxhook/core/notify_rules.py: the one rule for the URLs fluxhook notifies, and the same answer from its three
callers: NOTIFY_URL (config), a job's ``notify_url`` (notifications) and an app's ``webhook_url`` (app_webhooks),
each in its own words; what an answer means and when the next attempt goes; with the signature and headers (checked
with ``standardwebhooks``, the Standard Webhooks reference library), the webhook-ids and the body's shape
(fluxhook/lifecycle/notifications.py)."""

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
from fluxhook.core.errors import ConfigError, InvalidRequest
from fluxhook.core.hosts import parse_host_pattern
from fluxhook.core.job import Job
from fluxhook.core.notify_rules import (
    MAX_NOTIFY_URL,
    MAX_RETRY_AFTER,
    NOTIFY_RETRIES,
    Wording,
    check_form,
    check_notify_url,
    field_wording,
    next_delay,
    outcome_for,
)
from fluxhook.core.outcomes import DeliveryOutcome
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.steps import app_webhooks
from fluxhook.store.deliveries import ids_of
from notify_helpers import SECRET

ALLOWLIST = "app.example.com,*.hooks.example.com,127.0.0.1:9000"
ENV = {"REDIS_URL": "redis://127.0.0.1:6379/0", "BFL_API_KEY": "k", "SECRET_KEY": "0123456789abcdef0123456789abcdef",
       "API_TOKENS": "token-aaaaaaaa", "NOTIFY_SECRET": SECRET, "NOTIFY_HOST_ALLOWLIST": ALLOWLIST}
WORDS = Wording(malformed="malformed", too_long="too long", not_allowed="refused: {reason}")
PATTERNS = tuple(parse_host_pattern(p) for p in ALLOWLIST.split(","))

ALLOWED = [
    "https://app.example.com/h",
    "https://a.hooks.example.com/x?y=1&z=%20",
    "http://127.0.0.1:9000/hook",
    "https://app.example.com/" + "x" * (MAX_NOTIFY_URL - len("https://app.example.com/")),
]
MALFORMED = ["ftp://app.example.com/h", "https://app.example.com/a b", "https://app.example.com/\u00fc",
             "https://app.example.com/a\tb", "HTTPS://app.example.com/h", "app.example.com/h", "https:/app.example.com"]
TOO_LONG = ["https://app.example.com/" + "x" * (MAX_NOTIFY_URL + 1 - len("https://app.example.com/"))]
NOT_ALLOWED = ["http://app.example.com/h", "https://evil.example.net/", "https://app.example.com:8443/",
               "https://a.b.hooks.example.com/", "http://127.0.0.1:9001/", "https://user:pw@app.example.com/h"]


@pytest.mark.parametrize("url", ALLOWED)
def test_an_allowed_url_is_returned_as_it_is(url):
    assert check_notify_url(url, PATTERNS, WORDS) == url


@pytest.mark.parametrize("value, words", [
    *((url, "malformed") for url in MALFORMED), (None, "malformed"), (7, "malformed"), ([], "malformed"),
    *((url, "too long") for url in TOO_LONG),
])
def test_a_url_of_the_wrong_form_is_refused_whatever_its_host(value, words):
    for check in (lambda: check_form(value, WORDS), lambda: check_notify_url(value, PATTERNS, WORDS)):
        with pytest.raises(InvalidRequest) as refused:
            check()
        assert refused.value.message == words


@pytest.mark.parametrize("url", NOT_ALLOWED)
def test_a_url_the_allowlist_does_not_cover_is_refused_with_its_reason(url):
    assert check_form(url, WORDS) == url
    with pytest.raises(InvalidRequest) as refused:
        check_notify_url(url, PATTERNS, WORDS)
    assert refused.value.message.startswith("refused: ") and len(refused.value.message) > len("refused: ")


def test_the_apis_words_name_the_field():
    words = field_wording("notify_url")
    assert words.malformed == words.too_long == f"'notify_url' must be an http(s) URL of at most {MAX_NOTIFY_URL} characters"
    assert words.not_allowed.format(reason="R") == "'notify_url' is not allowed: R (NOTIFY_HOST_ALLOWLIST)"


# -- the three callers: one answer, each in its own words --------------------------------------------------------

def _job_url(url: str) -> str:
    return notifications.requested_url(url, Config.from_env(ENV))


def _app_webhook(url: str) -> str:
    _, hook = app_webhooks.split_body({"prompt": "p", "webhook_url": url}, Config.from_env(ENV))
    return hook.url


def _setting(url: str) -> str:
    return Config.from_env({**ENV, "NOTIFY_URL": url}).notify_url


@pytest.mark.parametrize("url", ALLOWED)
def test_every_caller_accepts_an_allowed_url(url):
    assert _job_url(url) == _app_webhook(url) == _setting(url) == url


@pytest.mark.parametrize("url", MALFORMED + TOO_LONG + NOT_ALLOWED)
def test_every_caller_refuses_what_the_rule_refuses(url):
    with pytest.raises(InvalidRequest, match="'notify_url'"):
        _job_url(url)
    with pytest.raises(InvalidRequest, match="'webhook_url'"):
        _app_webhook(url)
    with pytest.raises(ConfigError) as refused:
        _setting(url)
    [problem] = refused.value.problems
    assert problem.startswith("NOTIFY_URL: ")


def test_each_caller_keeps_its_words():
    long = TOO_LONG[0]
    with pytest.raises(InvalidRequest, match=r"^'notify_url' must be an http\(s\) URL of at most 2048 characters$"):
        _job_url(long)
    with pytest.raises(InvalidRequest, match=r"^'webhook_url' is not allowed: .* \(NOTIFY_HOST_ALLOWLIST\)$"):
        _app_webhook("https://evil.example.net/")
    with pytest.raises(ConfigError) as refused:
        _setting(long)
    assert refused.value.problems == ["NOTIFY_URL: must be at most 2048 characters"]
    with pytest.raises(ConfigError) as refused:
        _setting("https://evil.example.net/")
    assert refused.value.problems == [
        "NOTIFY_URL: host evil.example.net:443 is not in the allowlist (NOTIFY_HOST_ALLOWLIST); an http URL, a port "
        "other than 443 or a private address must be listed as its exact host:port in NOTIFY_HOST_ALLOWLIST"]


def test_a_malformed_job_url_is_named_before_a_missing_secret():
    unsigned = Config.from_env({k: v for k, v in ENV.items() if k != "NOTIFY_SECRET"})
    with pytest.raises(InvalidRequest, match="http\\(s\\) URL"):
        notifications.requested_url("ftp://app.example.com/h", unsigned)
    with pytest.raises(InvalidRequest, match="NOTIFY_SECRET"):
        notifications.requested_url("https://evil.example.net/", unsigned)


# --- What an answer means; the signed message ---

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
