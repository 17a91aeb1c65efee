"""fluxhook.client against the session's stack, for end users: an end user's spent day raises ``EndUserCreditsSpent``
(an ``InsufficientCredits``, so handlers of the README's class still catch it) naming it and when it may go on, while the
app key's own spent day stays a plain ``InsufficientCredits``; the key's other end user and another key's end user of
the same name go on."""

from __future__ import annotations

import time

import pytest

from fluxhook import client as fc
from key_helpers import make_key

ALLOWANCE = 0.001  # under any one job's price: one job spends it


def _client(stack, created: dict) -> fc.Client:
    return fc.Client(stack.base_url, created["key"], backoff=0.05)


def test_an_end_users_spent_day_raises_its_own_class(stack, api, sim):
    created, _ = make_key(api, end_user_limits={"daily_credits": ALLOWANCE})
    other, _ = make_key(api, end_user_limits={"daily_credits": ALLOWANCE})
    with _client(stack, created) as fluxhook, _client(stack, other) as other_key:
        fluxhook.wait(fluxhook.submit("flux-2-pro", {"prompt": "spends x's day"}, end_user="x").id, timeout=30)

        with pytest.raises(fc.EndUserCreditsSpent) as spent:
            fluxhook.submit("flux-2-pro", {"prompt": "over"}, end_user="x")
        assert isinstance(spent.value, fc.InsufficientCredits)
        assert (spent.value.end_user, spent.value.code, spent.value.status) == ("x", "budget_exceeded", 402)
        assert 0 < spent.value.retry_after <= 86400 - time.time() % 86400 + 1
        assert not fluxhook.submit("flux-2-pro", {"prompt": "y goes on"}, end_user="y").terminal
        assert not other_key.submit("flux-2-pro", {"prompt": "b's x goes on"}, end_user="x").terminal


def test_the_keys_own_spent_day_is_insufficient_credits_only(stack, api, sim):
    created, _ = make_key(api, daily_credits=ALLOWANCE)
    with _client(stack, created) as fluxhook:
        fluxhook.wait(fluxhook.submit("flux-2-pro", {"prompt": "spends the key's day"}, end_user="x").id, timeout=30)

        with pytest.raises(fc.InsufficientCredits) as spent:
            fluxhook.submit("flux-2-pro", {"prompt": "over"}, end_user="x")
        assert not isinstance(spent.value, fc.EndUserCreditsSpent) and spent.value.code == "budget_exceeded"
