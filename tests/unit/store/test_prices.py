"""What BFL's prices showed of each model's catalog entry (fluxhook/store/prices.py), on a real Redis: an entry seen
priced over its bound stays so whatever is seen within it; a process writes "within" once a while, not at every
submission, and again after Redis lost it."""

from __future__ import annotations

import redis

from fluxhook.store import prices as prices_module
from fluxhook.store.keys import KEYS
from fluxhook.store.prices import PriceCheck, PriceChecks
from helpers import commands_during

DB = 14


def test_within_is_written_once_a_while_and_over_stays_whatever_comes_after(redis_server, monkeypatch):
    connection = redis.Redis.from_url(redis_server.url.replace("/0", f"/{DB}"))
    connection.flushdb()
    prices, other = PriceChecks(connection), PriceChecks(connection)
    assert prices.check("flux-2-pro", "rule-1") == PriceCheck.UNSEEN

    prices.mark_within("flux-2-pro", "rule-1")
    assert other.check("flux-2-pro", "rule-1") == PriceCheck.WITHIN
    again = commands_during(connection, DB, lambda: prices.mark_within("flux-2-pro", "rule-1"))
    assert [c for c in again if KEYS.prices_within_catalog in c["command"]] == []  # said already: no round trip

    connection.delete(KEYS.prices_within_catalog)  # Redis lost it: written again after a while
    monkeypatch.setattr(prices_module, "WITHIN_REWRITE", 0.0)
    prices.mark_within("flux-2-pro", "rule-1")
    assert other.check("flux-2-pro", "rule-1") == PriceCheck.WITHIN
    assert other.check("flux-2-pro", "rule-2") == PriceCheck.UNSEEN  # a corrected entry is unseen again

    other.mark_over("flux-2-pro", "rule-1")
    prices.mark_within("flux-2-pro", "rule-1")
    assert prices.check("flux-2-pro", "rule-1") == PriceCheck.OVER
    connection.flushdb()
