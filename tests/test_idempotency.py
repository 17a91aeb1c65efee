"""Which requests count as the same under an Idempotency-Key (fluxhook/idempotency.py)."""

from __future__ import annotations

import pytest

from fluxhook.errors import InvalidIdempotencyKey
from fluxhook.idempotency import check_key, claim, fingerprint


def test_key_order_and_spacing_do_not_make_another_request():
    assert fingerprint("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1, "b": [1, 2]}}') == \
        fingerprint("POST", "/v1/jobs", b'{"input":{"b":[1,2],"a":1},"model":"m"}')


@pytest.mark.parametrize("other", [
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 2}}'),  # another value
    ("POST", "/v1/jobs/track", b'{"model": "m", "input": {"a": 1}}'),  # another endpoint
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1}, "metadata": {}}'),  # one more field
])
def test_anything_else_is_another_request(other):
    assert fingerprint("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1}}') != fingerprint(*other)


def test_a_body_that_is_not_json_is_compared_byte_for_byte():
    assert fingerprint("POST", "/v1/jobs", b"not json") == fingerprint("POST", "/v1/jobs", b"not json")
    assert fingerprint("POST", "/v1/jobs", b"not json") != fingerprint("POST", "/v1/jobs", b"not  json")


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "line\nbreak", "caf\u00e9", "\x00"])
def test_keys_that_are_empty_too_long_or_not_printable_are_refused(key):
    with pytest.raises(InvalidIdempotencyKey):
        check_key(key)


@pytest.mark.parametrize("key", ["a", "x" * 255, "order-7/retry 2", "~!@#$%^&*()"])
def test_printable_keys_up_to_255_characters_are_kept(key):
    assert check_key(key) == key


def test_a_claim_is_scoped_to_the_token_and_keeps_neither_in_the_clear():
    mine = claim("token-a", "key-1", "POST", "/v1/jobs", b"{}")
    theirs = claim("token-b", "key-1", "POST", "/v1/jobs", b"{}")
    assert mine.key == theirs.key and mine.scope != theirs.scope
    assert "token-a" not in "".join(mine) and "key-1" not in "".join(mine)
