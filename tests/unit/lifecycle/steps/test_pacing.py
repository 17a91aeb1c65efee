"""Sends paced by storage as the lifecycle judges them (fluxhook/lifecycle/steps/pacing.py), in-process on a real
Redis: the rule from the settings and the catalog, nothing asked of Redis below the floor, the mark set past it by a
sweep and lifted by the next once the backlog drains, a dispatcher woken in the same step. The rule itself:
tests/unit/core/test_pacing.py; its Lua and the slot scripts under its mark: tests/unit/store/test_pacing.py."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.lifecycle.steps.pacing import pace, rule_of
from fluxhook.lifecycle.sweep import sweep
from fluxhook.store.keys import KEYS
from helpers import commands_during

DB = 15


@pytest.fixture()
def svc(make_services):
    return make_services(DB)


def test_the_rule_is_the_settings_share_of_the_catalogs_shortest_url_life(make_services, tmp_path):
    models = tmp_path / "models.toml"
    models.write_text('[models."flux-2-pro"]\nkind = "image"\nurl_life = 60\n', encoding="utf-8")
    svc = make_services(DB, STORE_PACING_SHARE="0.25", STORE_PACING_FLOOR="8", BFL_MODELS_FILE=str(models))
    rule = rule_of(svc.config)
    assert (rule.share, rule.shortest_life, rule.floor, rule.bound) == (0.25, 60.0, 8, 15.0)


def test_below_the_floor_nothing_is_judged_and_nothing_asked(svc):
    sent = commands_during(svc.redis, DB, lambda: pace(svc, svc.config.store_pacing_floor - 1, time.time()))
    assert [c["command"] for c in sent if not c["command"].startswith(("SELECT", "HELLO", "CLIENT SETINFO"))] == []
    assert pace(svc, None, time.time()) is None


def test_the_sweep_holds_sends_for_storage_past_the_floor_and_wakes_a_dispatcher_once_it_drains(svc):
    floor = svc.config.store_pacing_floor
    ready = {f"job_{i:04d}": 0 for i in range(floor)}
    svc.redis.zadd(KEYS.status(st.READY), ready)
    now = time.time()
    sweep(svc, now)
    # Nothing stored of late, and a backlog at the floor: every send waits.
    assert svc.redis.get(KEYS.store_held) is not None and svc.store.pacer.judging
    svc.redis.delete(KEYS.slot_freed)
    svc.redis.zrem(KEYS.status(st.READY), *list(ready)[1:])
    # Judged again at the next sweep (each second while it holds), which lifts the mark and wakes one dispatcher.
    sweep(svc, now + 1)
    assert svc.redis.get(KEYS.store_held) is None and not svc.store.pacer.judging
    assert svc.redis.llen(KEYS.slot_freed) == 1
