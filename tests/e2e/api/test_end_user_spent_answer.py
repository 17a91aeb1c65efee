"""The 402 of an end user whose daily credits are spent, over real HTTP: it names the end user and says when its
allowance comes back (``Retry-After``: seconds to the next UTC day), where the app key's own spent day does not; the
key's other end user and another key's end user of the same name go on."""

from __future__ import annotations

import time

from helpers import assert_error
from key_helpers import make_key

ALLOWANCE = 0.001  # under any one job's price: one job spends it


def _spend(app, end_user: str) -> None:
    """One job of ``end_user``, ended: its day's credits are spent."""
    app.wait_for(app.submit("spends the day", end_user=end_user)["id"], timeout=30)


def _seconds_to_midnight() -> float:
    return 86400 - time.time() % 86400


def test_an_end_users_402_names_it_and_says_when_its_day_ends(api, sim):
    _, app = make_key(api, end_user_limits={"daily_credits": ALLOWANCE})
    _, other_key = make_key(api, end_user_limits={"daily_credits": ALLOWANCE})
    _spend(app, "x")

    before = _seconds_to_midnight()
    refused = app.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "over"}, "end_user": "x"})
    error = assert_error(refused, 402, "budget_exceeded")
    assert "end user 'x'" in error["message"]
    assert before - 2 <= int(refused.headers["Retry-After"]) <= _seconds_to_midnight() + 1
    assert app.submit("y goes on", end_user="y")["status"] in ("queued", "submitted")
    assert other_key.submit("b's x goes on", end_user="x")["status"] in ("queued", "submitted")

    # The key's own spent day: no time said.
    _, spent_key = make_key(api, daily_credits=ALLOWANCE)
    spent_key.wait_for(spent_key.submit("spends the key's day", end_user="x")["id"], timeout=30)
    refused = spent_key.post("/v1/jobs", json={"model": "flux-2-pro", "input": {"prompt": "over"}, "end_user": "x"})
    error = assert_error(refused, 402, "budget_exceeded")
    assert "this app key's credits" in error["message"] and "Retry-After" not in refused.headers
