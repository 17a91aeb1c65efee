"""receiver/auth.py's ``is_admin_token``: the one test of an admin token (API_TOKENS), which the API's bearer
tokens and the dashboard's sign-in form both go through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from receiver import dashboard_session
from receiver.auth import is_admin_token

TOKENS = ("first-admin-token", "second-admin-token")


@pytest.mark.parametrize("token, accepted", [
    ("first-admin-token", True),
    ("second-admin-token", True),
    ("", False),
    ("first-admin-toke", False),
    ("first-admin-token2", False),
    ("FIRST-ADMIN-TOKEN", False),
    (" first-admin-token", False),
    ("first-admin-token\udcff", False),  # bytes that are not UTF-8, as the server decodes them
])
def test_an_admin_token_is_exactly_one_of_api_tokens(token, accepted):
    assert is_admin_token(TOKENS, token) is accepted


def test_an_empty_token_is_never_an_admin_token():
    assert not is_admin_token(("",), "")
    assert not is_admin_token((), "anything")


@pytest.mark.parametrize("typed", ["first-admin-token", "  second-admin-token\n", "", "   ", "nope"])
def test_the_dashboard_sign_in_uses_the_same_rule_on_the_token_as_typed(monkeypatch, typed):
    monkeypatch.setattr(dashboard_session, "services", lambda: SimpleNamespace(config=SimpleNamespace(api_tokens=TOKENS)))
    assert dashboard_session.token_accepted(typed) is is_admin_token(TOKENS, typed.strip())
