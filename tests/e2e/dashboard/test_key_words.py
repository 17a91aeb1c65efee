"""What a newcomer is told when an app key does not work: trying one on the dashboard's sign-in, and using one
that was revoked or has expired. Each answer says what to do, not only what went wrong."""

from __future__ import annotations

from devtools.processes import wait_until
from fluxhook.lifecycle.steps.callers import key_refusal
from fluxhook.store.app_keys import AppKey
from helpers import assert_error, sign_in
from key_helpers import make_key


def test_an_app_key_cannot_sign_in_to_the_dashboard_and_is_told_what_can(stack, api):
    created, _ = make_key(api)
    _, answer = sign_in(stack.base_url, token=created["key"])
    assert answer.status_code == 401
    assert "app keys call the API but cannot sign in to the dashboard" in answer.text
    assert "Sign in with an admin token, one of API_TOKENS." in answer.text
    assert created["key"] not in answer.text
    # Any token shaped like an app key is told the same, real or not: the answer says nothing of which keys exist.
    _, made_up = sign_in(stack.base_url, token="fhk_0123456789abcdef_" + "x" * 43)
    assert made_up.status_code == 401 and "cannot sign in to the dashboard" in made_up.text
    _, wrong = sign_in(stack.base_url, token="not-a-token-of-ours")
    assert "not one of this service" in wrong.text and "API tokens (API_TOKENS)" in wrong.text


def test_a_revoked_key_is_told_to_ask_an_admin_for_a_new_one(api):
    created, app = make_key(api)
    assert api.delete(f"/v1/keys/{created['id']}").status_code == 204
    # Every web process sees it within a second (tests/e2e/api/test_app_keys.py); here only the words matter.
    wait_until(lambda: app.get("/v1/jobs").status_code == 401, timeout=10, interval=0.05, message="the key refused")
    message = assert_error(app.get("/v1/jobs"), 401, "unauthorized")["message"]
    assert message == ("this app key was revoked, and a revoked key cannot come back: "
                       "ask an admin of this service for a new key")


def test_an_expired_key_is_told_to_ask_an_admin_to_extend_it():
    key = AppKey(id="key_0123456789abcdef", name="shop", prefix="fhk_0123", secret_sha256="0" * 64,
                 expires_at=1_800_000_000.0)
    assert key_refusal(key, 1_799_999_999.0) is None
    assert key_refusal(key, 1_800_000_000.0) == ("this app key expired at 2027-01-15T08:00:00Z: ask an admin of this "
                                                 "service to extend it or for a new key")
