"""A request for the API refused from its head alone, before its body is received, when it carries no valid token
(receiver/auth.py, ``unauthorized_before_body``), and what judging a key-shaped token then costs (``KeyResolver``: one read
of its record, whether it is found or not, the app's own check after it included)."""

from __future__ import annotations

import pytest

from conftest import API_TOKEN
from fluxhook.lifecycle.steps.callers import MISSES_KEPT, KeyResolver
from fluxhook.lifecycle.steps.key_fields import new_key
from helpers import SECOND_TOKEN

KEY_SHAPED = "fhk_0123456789abcdef_" + "A" * 43


class Records:
    """App key records as the store holds them, counting the reads."""

    def __init__(self, *keys):
        self.keys = {key.id: key for key in keys}
        self.reads = 0

    def get(self, key_id):
        self.reads += 1
        return self.keys.get(key_id)

    def touch(self, key_id, now):
        pass


@pytest.mark.parametrize("method, target, headers, refused", [
    pytest.param("POST", "/v1/jobs", {}, True, id="no-token"),
    pytest.param("POST", "/v1/jobs", {"Authorization": "Bearer nope"}, True, id="unknown-token"),
    pytest.param("POST", "/v1/jobs", {"Authorization": "Basic " + API_TOKEN}, True, id="not-bearer"),
    pytest.param("POST", "/v1/flux-2-pro", {"x-key": "", "Authorization": f"Bearer {API_TOKEN}"}, True,
                 id="empty-x-key-judged-first"),
    pytest.param("PATCH", "/v1/keys/key_0123456789abcdef", {"x-key": "fhk_short"}, True, id="malformed-key"),
    pytest.param("POST", "/v1/jobs", {"Authorization": f"Bearer {API_TOKEN}"}, False, id="admin-token"),
    pytest.param("POST", "/v1/flux-2-pro?x=1", {"x-key": API_TOKEN}, False, id="admin-x-key"),
    pytest.param("POST", "/v1/jobs", {"Authorization": f"bearer {KEY_SHAPED}"}, True, id="key-shaped-forged"),
    pytest.param("GET", "/v1/jobs", {}, False, id="no-body-method"),
    pytest.param("POST", "/webhooks/bfl", {}, False, id="not-the-api"),
    pytest.param("POST", "/signin", {}, False, id="the-sign-in-form"),
    pytest.param("POST", "/v1%2Fjobs", {}, True, id="percent-encoded-as-the-app-decodes-it"),
])
def test_a_body_for_the_api_is_refused_from_the_head_alone_without_a_token_that_could_be_valid(
        method, target, headers, refused):
    from receiver.auth import unauthorized_before_body

    lowered = {name.lower(): value for name, value in headers.items()}
    keys = KeyResolver(Records())
    assert (unauthorized_before_body((API_TOKEN, SECOND_TOKEN), keys, method, target,
                                     lambda name: lowered.get(name.lower())) is not None) is refused


def test_a_real_key_is_let_through_and_a_revoked_one_or_a_wrong_secret_is_not():
    from receiver.auth import unauthorized_before_body

    good, secret = new_key({"name": "app"}, now=0.0)
    revoked, revoked_secret = new_key({"name": "gone", "revoked_at": 1.0}, now=0.0)
    keys = KeyResolver(Records(good, revoked))

    def refused(token: str) -> bool:
        return unauthorized_before_body((API_TOKEN,), keys, "POST", "/v1/jobs", {"x-key": token}.get) is not None

    assert not refused(secret)
    assert refused(revoked_secret)
    assert refused(secret[:-1] + ("A" if secret[-1] != "A" else "B"))


def test_a_forged_key_costs_one_read_before_its_body_and_none_when_it_is_answered():
    records = Records()
    keys = KeyResolver(records, clock=lambda: 100.0)

    assert keys.refusal(KEY_SHAPED) is not None
    assert keys.caller(KEY_SHAPED) is None  # the app's own check, once the head alone reaches it
    assert records.reads == 1


def test_ids_that_are_no_keys_are_remembered_a_bounded_number_at_a_time():
    keys = KeyResolver(Records(), clock=lambda: 100.0)
    for n in range(MISSES_KEPT + 50):
        assert keys.refusal(f"fhk_{n:016x}_" + "A" * 43) is not None
    assert len(keys._missing) == MISSES_KEPT


def _app_asking_for_a_bearer(*keys):
    """A Flask app whose one route wants a caller (``require_bearer``), with API_TOKEN and ``keys`` known."""
    from types import SimpleNamespace

    from flask import Flask

    from receiver import errors
    from receiver.auth import require_bearer

    app = Flask(__name__)
    errors.init_app(app)
    app.extensions["fluxhook"] = SimpleNamespace(config=SimpleNamespace(api_tokens=(API_TOKEN,)))
    app.extensions["fluxhook.keys"] = KeyResolver(Records(*keys))

    @app.get("/v1/whoami")
    def whoami():
        return {"admin": require_bearer().admin}

    return app.test_client()


@pytest.mark.parametrize("headers", [
    pytest.param({}, id="none"),
    pytest.param({"Authorization": "Bearer "}, id="scheme-alone"),
    pytest.param({"Authorization": API_TOKEN}, id="token-without-scheme"),
    pytest.param({"Authorization": f"Basic {API_TOKEN}"}, id="other-scheme"),
])
def test_no_token_is_told_how_to_send_one(headers):
    answer = _app_asking_for_a_bearer().get("/v1/whoami", headers=headers)
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"
    assert answer.json["error"]["message"].startswith("send 'Authorization: Bearer <token>' (or 'x-key: <token>')")


@pytest.mark.parametrize("headers", [
    pytest.param({"Authorization": "Bearer wrong-token-123"}, id="wrong-bearer"),
    pytest.param({"x-key": "wrong-token-123"}, id="wrong-x-key"),
    pytest.param({"Authorization": f"Bearer {API_TOKEN}x"}, id="admin-token-with-a-suffix"),
    pytest.param({"Authorization": f"Bearer {KEY_SHAPED}"}, id="key-shaped-but-no-keys"),
])
def test_a_token_that_is_no_ones_is_told_apart_from_a_missing_one(headers):
    answer = _app_asking_for_a_bearer().get("/v1/whoami", headers=headers)
    assert answer.status_code == 401 and answer.json["error"]["code"] == "unauthorized"
    message = answer.json["error"]["message"]
    assert message.startswith("the token sent was not recognised: it is neither one of API_TOKENS nor an app key's;")
    assert "copied whole" in message and "ask an admin for an app key" in message
    assert API_TOKEN not in message and "wrong-token" not in message and KEY_SHAPED not in message


def test_a_revoked_key_is_named_as_such_and_a_right_token_passes():
    revoked, secret = new_key({"name": "gone", "revoked_at": 1.0}, now=0.0)
    client = _app_asking_for_a_bearer(revoked)
    answer = client.get("/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 401 and "revoked" in answer.json["error"]["message"]
    assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {API_TOKEN}"}).json == {"admin": True}
