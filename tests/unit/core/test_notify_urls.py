"""fluxhook/core/notify_urls.py: the one rule for the URLs fluxhook notifies, and the same answer from its three
callers: NOTIFY_URL (config), a job's ``notify_url`` (notifications) and an app's ``webhook_url`` (app_webhooks),
each in its own words."""

from __future__ import annotations

import base64

import pytest

from fluxhook.core.config import Config
from fluxhook.core.errors import ConfigError, InvalidRequest
from fluxhook.core.hosts import parse_host_pattern
from fluxhook.core.notify_urls import MAX_NOTIFY_URL, Wording, check_form, check_notify_url, field_wording
from fluxhook.lifecycle import notifications
from fluxhook.lifecycle.steps import app_webhooks

SECRET = "whsec_" + base64.b64encode(b"fluxhook-notify-test-key-32-byte").decode()
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
