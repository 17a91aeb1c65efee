"""The Keys page's forms as API bodies (receiver/dashboard_keys.py): which BFL accounts and region a key may use."""

from __future__ import annotations

import pytest

from fluxhook.core.errors import InvalidRequest
from receiver.dashboard_keys import form_body, places_body


def test_the_create_form_sends_accounts_and_region_only_when_named():
    assert form_body({"name": "shop", "accounts": "", "region": " "}) == {"name": "shop"}
    assert form_body({"name": "shop", "accounts": "any", "region": "ANY"}) == {"name": "shop"}
    assert form_body({"name": "shop", "accounts": "eu, us", "region": "eu"}) == \
        {"name": "shop", "accounts": ["eu", "us"], "region": "eu"}


def test_the_change_form_lifts_with_blank_or_any():
    assert places_body({"accounts": "", "region": ""}) == {"accounts": None, "region": None}
    assert places_body({"accounts": "Any", "region": "any"}) == {"accounts": None, "region": None}
    assert places_body({"accounts": "eu us", "region": "us"}) == {"accounts": ["eu", "us"], "region": "us"}


def test_the_create_form_sends_max_queued_as_a_whole_number_only_when_given():
    assert form_body({"name": "shop", "max_queued": " 5000 "}) == {"name": "shop", "max_queued": 5000}
    assert form_body({"name": "shop", "max_queued": ""}) == {"name": "shop"}  # blank: MAX_QUEUED_PER_KEY


def test_the_create_form_sends_the_read_and_item_limits_as_whole_numbers_only_when_given():
    form = {"name": "shop", "reads_per_minute": "30", "items_per_minute": " 500", "items_per_day": ""}
    assert form_body(form) == {"name": "shop", "reads_per_minute": 30, "items_per_minute": 500}
    with pytest.raises(InvalidRequest, match="'items_per_day' is '1e5': it must be a whole number"):
        form_body({"name": "shop", "items_per_day": "1e5"})
