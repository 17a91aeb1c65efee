"""``fluxhook accounts``' rows and ``fluxhook credits``' lines (fluxhook/cli/accounts.py). As real processes against
a two-account stack: tests/e2e/api/test_accounts.py and tests/e2e/cli/test_one_balance.py."""

from __future__ import annotations

from fluxhook.cli.accounts import ACCOUNT_COLUMNS, account_row, credits_answer, credits_text
from fluxhook.credits.figures import epoch

EU = {"name": "eu", "region": "eu", "host": "api.eu.example", "in_flight": {"flux-2-pro": 3}, "queued": 2,
      "cooling": None, "balance": 1250.5, "balance_at": "2026-11-21T10:00:00Z", "spent_today": 42.0}
# Two minutes after the balance was read.
NOW = epoch("2026-11-21T10:02:00Z")


def _row(**fields) -> dict[str, str]:
    return dict(zip(ACCOUNT_COLUMNS, account_row(dict(EU, **fields), NOW), strict=True))


def test_an_account_that_takes_tasks():
    assert _row() == {"NAME": "eu", "REGION": "eu", "HOST": "api.eu.example", "IN FLIGHT": "3", "QUEUED": "2",
                      "STATE": "takes tasks", "BALANCE": "1,250.50 (read 2 min ago)", "SPENT TODAY": "42"}


def test_a_million_credits_read_as_people_write_them_never_1e06():
    row = _row(balance=1e6, balance_at="2026-11-21T10:01:58Z", spent_today=1234567.891)
    assert (row["BALANCE"], row["SPENT TODAY"]) == ("1,000,000 (read 2 s ago)", "1,234,567.89")


def test_a_cooling_account_says_why_and_until_when_and_an_unread_balance_is_a_dash():
    row = _row(cooling={"until": "2026-11-21T10:00:30Z", "reason": "unavailable"}, balance=None, balance_at=None,
               region=None, in_flight={})
    assert row["STATE"] == "cooling: unavailable until 2026-11-21T10:00:30Z"
    assert (row["BALANCE"], row["REGION"], row["IN FLIGHT"]) == ("-", "-", "0")


def test_tasks_in_flight_of_several_models_are_named():
    assert _row(in_flight={"flux-kontext-max": 1, "flux-2-pro": 3})["IN FLIGHT"] == "4 (flux-2-pro 3, flux-kontext-max 1)"


def test_credits_for_an_admin_list_each_accounts_reading_and_their_sum_as_accounts_writes_them():
    us = dict(EU, name="us", balance=1e6, balance_at="2026-11-21T10:01:20Z")
    shown = credits_answer({"credits": 1_001_250.5, "read_at": "2026-11-21T10:00:00Z"}, [EU, us])
    assert shown["accounts"] == [{"name": "eu", "credits": 1250.5, "read_at": "2026-11-21T10:00:00Z"},
                                 {"name": "us", "credits": 1e6, "read_at": "2026-11-21T10:01:20Z"}]
    assert credits_text(shown, NOW).splitlines() == ["ACCOUNT  BALANCE",
                                                     "eu       1,250.50 (read 2 min ago)",
                                                     "us       1,000,000 (read 40 s ago)",
                                                     "all      1,001,250.50 (read 2 min ago)"]


def test_credits_for_an_app_key_are_one_line():
    shown = credits_answer({"credits": 1250.5, "read_at": "2026-11-21T10:01:58Z"}, None)
    assert "accounts" not in shown and credits_text(shown, NOW) == "1,250.50 credits, read 2 s ago"
    assert credits_text(credits_answer({"credits": 40.0, "read_at": None}, None), NOW) == \
        "40 credits left today (this key's daily_credits)"
