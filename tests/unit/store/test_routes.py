"""A job's route read by the slot scripts (``lua/routes.lua``), the one reader of the routes ``route_for`` writes;
``Slots.accounts_for`` asks it for the views. Run on a real Redis over every route route_for makes of four accounts,
and some naming what is not configured."""

from __future__ import annotations

from dataclasses import replace

from fluxhook.core.accounts import ANY_ROUTE, Account, route_for
from fluxhook.store.slots import Slots
from slot_helpers import _config

ACCOUNTS = (Account("eu", "k1", "http://127.0.0.1:1", region="eu"),
            Account("eu-2", "k2", "http://127.0.0.1:2", region="eu"),
            Account("us", "k3", "http://127.0.0.1:3", region="us"),
            Account("default", "k4", "http://127.0.0.1:4"))
NAMES = [a.name for a in ACCOUNTS]


def test_each_route_allows_exactly_its_accounts_in_their_order(connection):
    slots = Slots(connection, replace(_config(), named_accounts=ACCOUNTS))
    expected = {
        None: NAMES, ANY_ROUTE: NAMES,
        route_for(ACCOUNTS, key_region="eu"): ["eu", "eu-2"],
        route_for(ACCOUNTS, key_region="us"): ["us"],
        route_for(ACCOUNTS, key_accounts=("us", "eu")): ["eu", "us"],
        route_for(ACCOUNTS, key_accounts=("eu", "eu-2"), account="eu-2"): ["eu-2"],
        route_for(ACCOUNTS, key_accounts=("eu", "us"), key_region="eu"): ["eu"],
        "r:asia": [], "a:gone": [], "a:eu-2,gone": ["eu-2"], "a:eu": ["eu"],
    }

    assert slots.accounts_for(list(expected)) == expected
    assert slots.accounts_for([]) == {}
