"""Tokens and secrets derived from SECRET_KEY (fluxhook/core/signing.py): webhook-URL tokens, per-job
webhook secrets and signed image URLs.
"""

from __future__ import annotations

import itertools
import types

import itsdangerous.timed
import pytest

from conftest import SECRET_KEY
from fluxhook.core import signing
from fluxhook.core.job import new_job_id

KEY = "unit-test-secret-key-0123456789"
OTHER_KEY = "another-secret-key-9876543210"


def job_id() -> str:
    return new_job_id()


def _tamper_signature(token: str) -> str:
    """Change the first signature character (all 6 of its bits count, unlike the last one's)."""
    payload, _, sig = token.rpartition(".")
    return f"{payload}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


def test_webhook_token_round_trip():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert "/" not in token and "?" not in token and "#" not in token


def test_webhook_token_names_its_job_s_model_signed_and_one_minted_without_it_still_reads():
    jid = job_id()
    named = signing.webhook_token(KEY, jid, "flux-3-video")
    assert signing.webhook_token_claims(KEY, named) == (jid, "flux-3-video")
    assert signing.job_id_from_webhook_token(KEY, named) == jid
    assert signing.webhook_token_claims(KEY, signing.webhook_token(KEY, jid)) == (jid, None)
    # Another model in the same payload keeps the old signature: refused.
    other = signing.webhook_token(KEY, jid, "flux-2-pro")
    assert signing.webhook_token_claims(KEY, other.split(".")[0] + "." + named.split(".")[1]) is None


@pytest.mark.parametrize("claims", [[], ["job"], ["job", "model", "more"], [1, "model"], ["job", 2], {"a": 1}, 7])
def test_webhook_token_claims_of_another_shape_even_signed_are_none(claims):
    token = signing._serializer((KEY,), signing._WEBHOOK_URL_SALT).dumps(claims)
    assert signing.webhook_token_claims(KEY, token) is None
    assert signing.job_id_from_webhook_token(KEY, token) is None


def test_webhook_token_for_another_secret_key_is_none():
    token = signing.webhook_token(OTHER_KEY, job_id())
    assert signing.job_id_from_webhook_token(KEY, token) is None


def test_webhook_token_tampered_is_none():
    jid = job_id()
    token = signing.webhook_token(KEY, jid)
    tampered = _tamper_signature(token)
    assert signing.job_id_from_webhook_token(KEY, tampered) is None
    # swapping the payload for another job's id keeps the old signature: refused
    other = signing.webhook_token(KEY, job_id())
    spliced = other.split(".")[0] + "." + token.split(".")[1]
    assert signing.job_id_from_webhook_token(KEY, spliced) is None


@pytest.mark.parametrize("garbage", ["", "x", ".", "abc.def", "a" * 500, "%%%", "\u00e9.\u00e9"])
def test_webhook_token_garbage_is_none(garbage):
    assert signing.job_id_from_webhook_token(KEY, garbage) is None


def test_webhook_token_and_image_token_are_not_interchangeable():
    jid = job_id()
    assert signing.job_id_from_webhook_token(KEY, signing.image_token(KEY, jid)) is None
    assert signing.image_token_valid(KEY, signing.webhook_token(KEY, jid), jid, 3600) is False


def test_job_webhook_secret_differs_between_jobs_and_keys_and_is_stable():
    a, b = job_id(), job_id()
    secret = signing.job_webhook_secret(KEY, a)
    assert secret == signing.job_webhook_secret(KEY, a)
    assert secret != signing.job_webhook_secret(KEY, b)
    assert secret != signing.job_webhook_secret(OTHER_KEY, a)
    assert isinstance(secret, str) and len(secret) >= 32
    assert a not in secret and KEY not in secret
    assert secret != signing.webhook_token(KEY, a)


def test_image_token_valid_for_its_job_only():
    a, b = job_id(), job_id()
    token = signing.image_token(KEY, a)
    assert signing.image_token_valid(KEY, token, a, 3600) is True
    assert signing.image_token_valid(KEY, token, b, 3600) is False
    assert signing.image_token_valid(OTHER_KEY, token, a, 3600) is False


def _mint_image_token_at(monkeypatch, when: float, jid: str) -> str:
    monkeypatch.setattr(itsdangerous.timed, "time", types.SimpleNamespace(time=lambda: when))
    try:
        return signing.image_token(KEY, jid)
    finally:
        monkeypatch.undo()


def test_image_token_expires_after_max_age(monkeypatch):
    import time

    jid = job_id()
    old = _mint_image_token_at(monkeypatch, time.time() - 7200, jid)
    assert signing.image_token_valid(KEY, old, jid, 3600) is False
    assert signing.image_token_valid(KEY, old, jid, 7100) is False
    assert signing.image_token_valid(KEY, old, jid, 10_000) is True


def test_image_token_from_the_future_is_refused(monkeypatch):
    import time

    jid = job_id()
    future = _mint_image_token_at(monkeypatch, time.time() + 7200, jid)
    assert signing.image_token_valid(KEY, future, jid, 3600) is False


def test_image_token_negative_max_age_refuses_fresh_token():
    jid = job_id()
    assert signing.image_token_valid(KEY, signing.image_token(KEY, jid), jid, -1) is False


def test_image_token_tampered_is_invalid():
    jid = job_id()
    token = signing.image_token(KEY, jid)
    tampered = _tamper_signature(token)
    assert signing.image_token_valid(KEY, tampered, jid, 3600) is False


@pytest.mark.parametrize("garbage", ["", "x", "...", "a.b.c", "a" * 300, "\u00e9\u00e9.x.y"])
def test_image_token_garbage_is_false(garbage):
    assert signing.image_token_valid(KEY, garbage, job_id(), 3600) is False


def test_job_webhook_url_shape():
    jid = job_id()
    url = signing.job_webhook_url("https://hooks.example.com", KEY, jid)
    prefix = "https://hooks.example.com/webhooks/bfl/"
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert token and "/" not in token
    assert signing.job_id_from_webhook_token(KEY, token) == jid
    assert KEY not in url
    assert signing.job_webhook_secret(KEY, jid) not in url


def test_job_webhook_url_differs_per_job():
    a, b = job_id(), job_id()
    assert signing.job_webhook_url("http://localhost:8000", KEY, a) != signing.job_webhook_url(
        "http://localhost:8000", KEY, b)


KINDS = signing.FILE_KINDS


def test_each_kind_has_its_own_token():
    job_id = "job_01TESTSIGNEDLINKS"
    tokens = {kind: signing.file_token(SECRET_KEY, job_id, kind) for kind in KINDS}
    assert len(set(tokens.values())) == len(KINDS)
    for minted, asked in itertools.product(KINDS, KINDS):
        assert signing.file_token_valid(SECRET_KEY, tokens[minted], job_id, asked, 60) is (minted == asked)


def test_an_unknown_kind_has_no_link():
    with pytest.raises(ValueError):
        signing.file_token(SECRET_KEY, "job_x", "everything")
    assert signing.file_token_valid(SECRET_KEY, signing.image_token(SECRET_KEY, "job_x"), "job_x", "nope", 60) is False
