"""The app's own webhook on the BFL-compatible API (fluxhook/lifecycle/steps/app_webhooks.py; pure): it leaves the task's
body, its secret is kept sealed and opens after a key rotation, and a webhook that cannot be called is refused."""

from __future__ import annotations

import json

import pytest

from fluxhook.core import job as st
from fluxhook.core.config import Config
from fluxhook.core.errors import InvalidRequest
from fluxhook.core.job import Job, new_job_id
from fluxhook.lifecycle.steps import app_webhooks
from fluxhook.store.records import encode_fields

ENV = {"REDIS_URL": "redis://localhost:6379/0", "SECRET_KEY": "s" * 32, "API_TOKENS": "token-aaaaaaaa",
       "PUBLIC_BASE_URL": "https://fluxhook.example", "NOTIFY_HOST_ALLOWLIST": "hooks.example.com,127.0.0.1:9999"}
CONFIG = Config.from_env(ENV)


def test_the_apps_webhook_leaves_the_body_and_its_secret_is_kept_sealed():
    body = {"prompt": "p", "width": 512, "webhook_url": "https://hooks.example.com/bfl", "webhook_secret": "app-secret"}
    task_input, hook = app_webhooks.split_body(body, CONFIG)
    assert task_input == {"prompt": "p", "width": 512}
    assert hook.url == "https://hooks.example.com/bfl"
    assert "app-secret" not in hook.sealed_secret
    assert app_webhooks.unseal(CONFIG, hook.sealed_secret) == "app-secret"
    # Kept in the record sealed: the secret is in no field of it.
    fields = encode_fields(Job(id=new_job_id(), status=st.QUEUED, app_webhook_url=hook.url,
                               app_webhook_secret=hook.sealed_secret).__dict__)
    assert "app-secret" not in json.dumps(fields)
    assert app_webhooks.split_body({"prompt": "p"}, CONFIG) == ({"prompt": "p"}, None)


def test_a_sealed_secret_opens_after_a_key_rotation_and_not_with_another_key():
    _, hook = app_webhooks.split_body({"prompt": "p", "webhook_url": "http://127.0.0.1:9999/h",
                                       "webhook_secret": "s3"}, CONFIG)
    rotated = Config.from_env({**ENV, "SECRET_KEY": "n" * 32, "SECRET_KEY_PREVIOUS": "s" * 32})
    assert app_webhooks.unseal(rotated, hook.sealed_secret) == "s3"
    assert app_webhooks.unseal(Config.from_env({**ENV, "SECRET_KEY": "x" * 32}), hook.sealed_secret) is None


@pytest.mark.parametrize("body", [
    {"prompt": "p", "webhook_url": "https://elsewhere.example.org/h"},  # not in NOTIFY_HOST_ALLOWLIST
    {"prompt": "p", "webhook_url": "http://127.0.0.1:9998/h"},
    {"prompt": "p", "webhook_url": "ftp://hooks.example.com/h"},
    {"prompt": "p", "webhook_url": 7},
    {"prompt": "p", "webhook_url": "https://hooks.example.com/h", "webhook_secret": "two\nlines"},
    {"prompt": "p", "webhook_url": "https://hooks.example.com/h", "webhook_secret": ["x"]},
])
def test_an_apps_webhook_that_cannot_be_called_is_refused(body):
    with pytest.raises(InvalidRequest):
        app_webhooks.split_body(body, CONFIG)
