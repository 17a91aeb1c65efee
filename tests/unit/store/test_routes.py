"""A job's route read alike by Python (``core.accounts.route_allows``) and the slot scripts (``lua/routes.lua``):
both run over the same routes, the Lua on a real Redis, and any answer that differs fails."""

from __future__ import annotations

import itertools

from fluxhook.core.accounts import ANY_ROUTE, Account, route_allows, route_for
from fluxhook.store.scripts import source

ACCOUNTS = (Account("eu", "k1", "http://127.0.0.1:1", region="eu"),
            Account("eu-2", "k2", "http://127.0.0.1:2", region="eu"),
            Account("us", "k3", "http://127.0.0.1:3", region="us"),
            Account("default", "k4", "http://127.0.0.1:4"))


def _routes() -> list[str]:
    """Every route route_for makes of these accounts, and a few that name what is not configured."""
    made = {ANY_ROUTE, "r:asia", "a:gone", "a:eu-2,gone"}
    for region in ("eu", "us"):
        made.add(route_for(ACCOUNTS, key_region=region))
    for size in (1, 2, 3):
        for names in itertools.combinations([a.name for a in ACCOUNTS], size):
            made.add(route_for(ACCOUNTS, key_accounts=names))
    return sorted(made)


def test_python_and_the_slot_scripts_read_every_route_alike(connection):
    routes = _routes()
    cases = [(route, account) for route in routes for account in ACCOUNTS]
    script = source("routes") + """
local answers = {}
for i = 1, #ARGV, 3 do answers[#answers + 1] = route_allows(ARGV[i], ARGV[i + 1], ARGV[i + 2]) and 1 or 0 end
return answers"""
    args = [x for route, account in cases for x in (route, account.name, account.region or "")]
    by_lua = connection.eval(script, 0, *args)
    by_python = [int(route_allows(route, account)) for route, account in cases]
    assert by_lua == by_python
    assert 0 < sum(by_python) < len(cases)  # the table holds both answers
