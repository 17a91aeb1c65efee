"""Which requests count as the same under an Idempotency-Key, and which keys are refused (receiver/idempotency_keys.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from fluxhook.core import json_body
from fluxhook.core.errors import InvalidIdempotencyKey, InvalidRequest
from receiver.idempotency_keys import MAX_KEY_LENGTH, Parsed, check_key, fingerprint, key_use

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "fluxhook-hypothesis")  # out of the repository

BODY = b'{"model": "m", "input": {"a": 1, "b": [1, 2]}, "metadata": {"x": "caf\\u00e9"}}'


@pytest.mark.parametrize("same", [
    b'{"input":{"b":[1,2],"a":1},"metadata":{"x":"caf\\u00e9"},"model":"m"}',  # another key order, no spaces
    # é as UTF-8 rather than escaped, newlines and tabs between the tokens
    b'\n{ "model" : "m",\n  "input" : { "a" : 1, "b" : [ 1, 2 ] },\t"metadata": {"x": "caf\xc3\xa9"} }\n',
])
def test_key_order_spacing_and_escapes_do_not_make_another_request(same):
    assert fingerprint("POST", "/v1/jobs", BODY) == fingerprint("POST", "/v1/jobs", same)


@pytest.mark.parametrize("other", [
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 2, "b": [1, 2]}, "metadata": {"x": "caf\\u00e9"}}'),
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1, "b": [2, 1]}, "metadata": {"x": "caf\\u00e9"}}'),
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1, "b": [1, 2]}, "metadata": {"x": "cafe"}}'),
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": 1, "b": [1, 2]}, "metadata": {"x": "caf\\u00e9"}, "y": 0}'),
    ("POST", "/v1/jobs", b'{"model": "m", "input": {"a": "1", "b": [1, 2]}, "metadata": {"x": "caf\\u00e9"}}'),
    ("POST", "/v1/jobs/track", BODY),  # the same body on the other endpoint
    ("PUT", "/v1/jobs", BODY),
])
def test_anything_else_is_another_request(other):
    assert fingerprint("POST", "/v1/jobs", BODY) != fingerprint(*other)


def test_a_body_that_is_not_json_is_compared_byte_for_byte():
    assert fingerprint("POST", "/v1/jobs", b"not json") == fingerprint("POST", "/v1/jobs", b"not json")
    assert fingerprint("POST", "/v1/jobs", b"not json") != fingerprint("POST", "/v1/jobs", b"not  json")
    assert fingerprint("POST", "/v1/jobs", b"") != fingerprint("POST", "/v1/jobs", b"{}")


def test_json_that_the_api_refuses_still_has_a_fingerprint():
    # Lone surrogates, NaN and deep nesting are refused by the view: the key must still be usable.
    for body in (b'{"a": "\\ud800"}', b'{"a": NaN}', b"[" * 100 + b"]" * 100):
        with pytest.raises(InvalidRequest):
            json_body.loads(body)
        assert len(fingerprint("POST", "/v1/jobs", body)) == 64


@pytest.mark.parametrize("key", ["", "x" * (MAX_KEY_LENGTH + 1), "tab\there", "line\nbreak", "cr\rhere",
                                 "caf\u00e9", "\x00", "bell\x07", "del\x7f", "\u200bzero-width", "nbsp\u00a0"])
def test_keys_that_are_empty_too_long_or_not_printable_are_refused(key):
    with pytest.raises(InvalidIdempotencyKey) as refused:
        check_key(key)
    assert refused.value.status == 400 and refused.value.code == "invalid_idempotency_key"


@pytest.mark.parametrize("key", ["a", "x" * MAX_KEY_LENGTH, "order-7/retry 2", "~!@#$%^&*()", "7f2c0c3e-uuid-like"])
def test_printable_keys_up_to_255_characters_are_kept(key):
    assert check_key(key) == key


def test_a_key_use_is_scoped_to_the_token_and_keeps_neither_in_the_clear():
    mine = key_use("token-a", "key-1", "POST", "/v1/jobs", b"{}")
    theirs = key_use("token-b", "key-1", "POST", "/v1/jobs", b"{}")
    assert mine.key == theirs.key and mine.scope != theirs.scope and mine.fingerprint == theirs.fingerprint
    assert "token-a" not in "".join(mine) and "key-1" not in "".join(mine)
    assert all(len(part) == 64 and int(part, 16) >= 0 for part in mine)


def test_a_key_use_checks_its_key():
    with pytest.raises(InvalidIdempotencyKey):
        key_use("token-a", "k" * 256, "POST", "/v1/jobs", b"{}")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, database=None)
@given(value=_JSON)
def test_a_parsed_body_has_the_fingerprint_of_its_bytes(value):
    # The web hashes the body it parsed, a piece at a time; a key use made from the bytes must match it.
    sent = json.dumps(value).encode()
    assert fingerprint("POST", "/v1/jobs", Parsed(json_body.loads(sent))) == fingerprint("POST", "/v1/jobs", sent)


def test_a_long_string_is_hashed_as_one_string():
    long = {"input": {"input_image": "é" * 3_000_000 + "x"}}
    assert fingerprint("POST", "/p", Parsed(long)) == fingerprint("POST", "/p", json.dumps(long).encode())
