"""The one way work comes due for the notifiers (fluxhook/store/lua/outbox.lua, its Python side
``Deliveries.into_outbox``): a member put in the outbox wakes a notifier in the same step, and no other code writes
the outbox, so no producer can leave a message due with nobody woken for it."""

from __future__ import annotations

import re
from pathlib import Path

from fluxhook.store.deliveries import Deliveries
from fluxhook.store.keys import KEYS

ROOT = Path(__file__).resolve().parents[3] / "fluxhook"
# A write to a sorted set whose key names the outbox: in Lua a ZADD whose key mentions it, in Python a zadd on it.
_LUA_WRITE = re.compile(r"ZADD'\s*,\s*[^,]*outbox", re.IGNORECASE)
_PY_WRITE = re.compile(r"\.zadd\([^)]*outbox")


def test_nothing_but_outbox_lua_writes_the_outbox():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sorted(ROOT.rglob("*.lua")) if path.name != "outbox.lua"
             for n, line in enumerate(path.read_text().splitlines(), 1) if _LUA_WRITE.search(line)]
    found += [f"{path.relative_to(ROOT)}:{n}" for path in sorted(ROOT.rglob("*.py"))
              for n, line in enumerate(path.read_text().splitlines(), 1) if _PY_WRITE.search(line)]
    assert found == [], f"write the outbox with outbox.add (Lua) or Deliveries.into_outbox: {found}"


def test_the_check_finds_a_write_of_its_own_kind():
    assert _LUA_WRITE.search("redis.call('ZADD', outbox, 'NX', spec.now, spec.id)")
    assert _LUA_WRITE.search("redis.call('ZADD', KEYS[spec.outbox], now, id)")
    assert _PY_WRITE.search("pipe.zadd(svc.store.keys.outbox, later)")
    assert not _LUA_WRITE.search("redis.call('ZADD', due, when, spec.id)")


def test_members_put_in_the_outbox_wake_a_notifier_in_the_same_step(connection):
    store = Deliveries(connection)
    connection.delete(KEYS.outbox, KEYS.notify_added)

    store.into_outbox({"job_a|job.submitted": 1.5, "job_b": 2.5}, only_new=True)
    store.into_outbox({"job_a|job.submitted": 9.0}, only_new=True)  # there already: left as it is

    assert connection.zrange(KEYS.outbox, 0, -1, withscores=True) == [(b"job_a|job.submitted", 1.5), (b"job_b", 2.5)]
    assert connection.lrange(KEYS.notify_added, 0, -1) == [b"1"]  # one wake-up, however many pushes
