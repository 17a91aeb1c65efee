"""``fluxhook keys list``'s rows (fluxhook/cli/keys.py): a key's figures, why its queued jobs wait and where they may
go; and the options that set a key's accounts and region. As a real
process against the stack: tests/e2e/cli/test_keys.py, and with a job waiting: tests/e2e/api/test_key_limits.py."""

from __future__ import annotations

import pytest

from fluxhook.cli.keys import KEY_COLUMNS, _limits, key_row, waiting_for
from fluxhook.cli.main import build_parser

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


def test_a_keys_row_says_where_its_jobs_may_go():
    def places(**fields):
        return dict(zip(KEY_COLUMNS, key_row(dict(KEY, **fields)), strict=True))["ACCOUNTS"]

    assert places() == "any"  # a service from before accounts: no such fields
    assert places(accounts=None, region=None) == "any"
    assert places(accounts=["eu", "us"], region=None) == "eu,us"
    assert places(accounts=None, region="eu") == "region eu"


def test_accounts_and_region_options_as_the_api_takes_them():
    parser = build_parser()

    created = parser.parse_args(["keys", "create", "shop", "--accounts", "eu, us", "--region", "eu"])
    lifted = parser.parse_args(["keys", "update", "key_0123456789abcdef", "--accounts", "any", "--region", "ANY"])
    untouched = parser.parse_args(["keys", "update", "key_0123456789abcdef", "--weight", "2"])

    assert _limits(created) == {"accounts": ["eu", "us"], "region": "eu"}
    assert _limits(lifted) == {"accounts": None, "region": None}  # null: any account, any region
    assert _limits(untouched) == {"weight": 2}



def test_max_queued_is_set_and_returned_to_the_services_default_with_none(capsys):
    parser = build_parser()

    created = parser.parse_args(["keys", "create", "shop", "--max-queued", "5000"])
    back = parser.parse_args(["keys", "update", "key_0123456789abcdef", "--max-queued", "none"])

    assert _limits(created) == {"max_queued": 5000}
    assert _limits(back) == {"max_queued": None}  # null: MAX_QUEUED_PER_KEY again, not "no limit"
    with pytest.raises(SystemExit):
        parser.parse_args(["keys", "update", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "'none' returns it to MAX_QUEUED_PER_KEY" in shown and "429 queue_full" in shown


def test_the_read_and_item_limits_are_set_and_returned_to_the_services_defaults_with_none(capsys):
    parser = build_parser()

    created = parser.parse_args(["keys", "create", "shop", "--reads-per-minute", "30", "--items-per-minute", "500",
                                 "--items-per-day", "9000"])
    back = parser.parse_args(["keys", "update", "key_0123456789abcdef", "--reads-per-minute", "none",
                              "--items-per-minute", "none", "--items-per-day", "none"])

    assert _limits(created) == {"reads_per_minute": 30, "items_per_minute": 500, "items_per_day": 9000}
    assert _limits(back) == {"reads_per_minute": None, "items_per_minute": None, "items_per_day": None}
    with pytest.raises(SystemExit):
        parser.parse_args(["keys", "update", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert all(f"'none' returns it to {name}" in shown for name in ("READS_PER_MINUTE", "ITEMS_PER_MINUTE",
                                                                     "ITEMS_PER_DAY"))


def test_strict_input_is_set_on_or_off_and_returned_to_off_with_none(capsys):
    parser = build_parser()

    assert _limits(parser.parse_args(["keys", "create", "shop", "--strict-input", "on"])) == {"strict_input": True}
    assert _limits(parser.parse_args(["keys", "update", "key_0123456789abcdef", "--strict-input", "OFF"])) == {
        "strict_input": False}
    assert _limits(parser.parse_args(["keys", "update", "key_0123456789abcdef", "--strict-input", "none"])) == {
        "strict_input": None}  # null: off, the default
    with pytest.raises(SystemExit):
        parser.parse_args(["keys", "create", "shop", "--strict-input", "maybe"])
    assert "not a valid value: 'maybe'" in capsys.readouterr().err
