"""Proving a callback came from BFL (fluxhook/bfl/verification.py): the X-Webhook-Secret and
X-BFL-Signature headers.
"""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from fluxhook.bfl.verification import body_signature, verify_callback
from fluxhook.core.errors import Unauthorized

SECRET = "per-job-secret-abcdef0123456789"
ROTATED = "next-secret-zyxwvu9876543210"
BODY = b'{"id": "abc", "status": "Ready", "result": {"sample": "https://delivery.eu.bfl.ai/x.png"}}'


def hmac_hex(secret: str, payload: bytes) -> str:
    import hashlib
    import hmac

    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def test_body_signature_format():
    assert body_signature(SECRET, BODY) == "sha256=" + hmac_hex(SECRET, BODY)


def test_secret_header_right():
    assert verify_callback({"X-Webhook-Secret": SECRET}, BODY, [SECRET], required=True) is True
    assert verify_callback({"X-Webhook-Secret": SECRET}, BODY, [SECRET], required=False) is True


@pytest.mark.parametrize("given", ["wrong", "", SECRET + "x", SECRET[:-1], SECRET.upper(), " " + SECRET + "x", "é" * 5])
def test_secret_header_wrong(given):
    with pytest.raises(Unauthorized):
        verify_callback({"X-Webhook-Secret": given}, BODY, [SECRET], required=False)


def test_signature_header_right():
    headers = {"X-BFL-Signature": "sha256=" + hmac_hex(SECRET, BODY)}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


def test_signature_header_uppercase_hex_accepted():
    headers = {"X-BFL-Signature": "sha256=" + hmac_hex(SECRET, BODY).upper()}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


@pytest.mark.parametrize(
    "value",
    [
        "sha256=" + "0" * 64,                                   # wrong hex
        hmac_hex(SECRET, BODY),                                 # missing sha256= prefix
        "sha1=" + hmac_hex(SECRET, BODY),                       # other algorithm name
        "sha256=" + hmac_hex(SECRET, BODY)[:-1],                # wrong length (short)
        "sha256=" + hmac_hex(SECRET, BODY) + "0",               # wrong length (long)
        "sha256=" + "zz" + hmac_hex(SECRET, BODY)[2:],          # not hex
        "sha256=" + hmac_hex(SECRET, BODY + b" "),              # signature of a different body
        "sha256=" + hmac_hex("other-secret", BODY),             # signed with another secret
        "sha256=",
        "",
    ],
)
def test_signature_header_wrong(value):
    with pytest.raises(Unauthorized):
        verify_callback({"X-BFL-Signature": value}, BODY, [SECRET], required=False)


def test_both_headers_right():
    headers = {"X-Webhook-Secret": SECRET, "X-BFL-Signature": body_signature(SECRET, BODY)}
    assert verify_callback(headers, BODY, [SECRET], required=True) is True


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Webhook-Secret": SECRET, "X-BFL-Signature": "sha256=" + "0" * 64},
        {"X-Webhook-Secret": "wrong", "X-BFL-Signature": body_signature(SECRET, BODY)},
    ],
)
def test_both_headers_one_wrong_is_refused(headers):
    with pytest.raises(Unauthorized):
        verify_callback(headers, BODY, [SECRET], required=False)


def test_no_header_not_required_returns_false():
    assert verify_callback({}, BODY, [SECRET], required=False) is False
    assert verify_callback({"Content-Type": "application/json"}, BODY, [SECRET], required=False) is False


def test_no_header_required_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_callback({}, BODY, [SECRET], required=True)


@pytest.mark.parametrize("secrets", [[], [""], [None, ""]])
@pytest.mark.parametrize("header", ["X-Webhook-Secret", "X-BFL-Signature"])
def test_no_configured_secret_but_header_given_is_unauthorized(secrets, header):
    value = "" if header == "X-Webhook-Secret" else body_signature("", BODY)
    with pytest.raises(Unauthorized):
        verify_callback({header: value}, BODY, secrets, required=False)


def test_no_configured_secret_and_no_header_required_is_unauthorized():
    with pytest.raises(Unauthorized):
        verify_callback({}, BODY, [""], required=True)


@pytest.mark.parametrize("secret", [SECRET, ROTATED])
def test_rotation_accepts_either_secret(secret):
    assert verify_callback({"X-Webhook-Secret": secret}, BODY, [SECRET, ROTATED], required=True) is True
    assert verify_callback({"X-BFL-Signature": body_signature(secret, BODY)}, BODY, [SECRET, ROTATED],
                           required=True) is True


def test_rotation_still_refuses_other_secrets():
    with pytest.raises(Unauthorized):
        verify_callback({"X-Webhook-Secret": "third"}, BODY, [SECRET, ROTATED], required=False)
    with pytest.raises(Unauthorized):
        verify_callback({"X-BFL-Signature": body_signature("third", BODY)}, BODY, [SECRET, ROTATED], required=False)


def test_secrets_may_be_any_iterable():
    assert verify_callback({"X-Webhook-Secret": ROTATED}, BODY, (s for s in [SECRET, ROTATED]), required=True)


@pytest.mark.parametrize("name", ["x-webhook-secret", "X-WEBHOOK-SECRET", "X-Webhook-Secret"])
def test_secret_header_name_case_insensitive_with_flask_headers(name):
    assert verify_callback(Headers({name: SECRET}), BODY, [SECRET], required=True) is True
    with pytest.raises(Unauthorized):
        verify_callback(Headers({name: "wrong"}), BODY, [SECRET], required=False)


@pytest.mark.parametrize("name", ["x-bfl-signature", "X-BFL-SIGNATURE", "X-Bfl-Signature"])
def test_signature_header_name_case_insensitive_with_flask_headers(name):
    assert verify_callback(Headers({name: body_signature(SECRET, BODY)}), BODY, [SECRET], required=True) is True
    with pytest.raises(Unauthorized):
        verify_callback(Headers({name: "sha256=" + "0" * 64}), BODY, [SECRET], required=False)
