"""``fluxhook keys list``'s rows (fluxhook/cli/keys.py): a key's figures, and why its queued jobs wait. As a real
process against the stack: tests/e2e/cli/test_keys.py, and with a job waiting: tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

from fluxhook.cli.keys import KEY_COLUMNS, key_row, waiting_for

KEY = {"id": "key_0123456789abcdef", "name": "shop", "prefix": "fhk_ab12", "revoked_at": None, "spent_today": 6.0,
       "daily_credits": 6.0, "requests_per_minute": None, "weight": 1, "last_used_at": None, "active": 1, "queued": 3,
       "queued_by_reason": {"bfl_slots": 1, "key_daily_credits": 2}}


def test_a_keys_row_says_why_its_jobs_wait():
    row = dict(zip(KEY_COLUMNS, key_row(KEY), strict=True))
    assert row["ACTIVE/QUEUED"] == "1/3"
    assert row["WAITING FOR"] == "bfl_slots 1, key_daily_credits 2"
    assert (row["SPENT TODAY"], row["STATE"], row["RATE"]) == ("6 / 6", "active", "-")


def test_a_key_none_of_whose_jobs_wait_says_so():
    assert waiting_for(dict(KEY, queued=0, queued_by_reason={})) == "-"
    assert waiting_for({"queued": 0}) == "-"  # a service from before the reasons
