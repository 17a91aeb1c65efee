"""The one way work comes due for the sweepers (fluxhook/store/lua/sweep_index.lua, its Python side
``lua/sweep_index_add.lua``): a member put first in an index the sweep reads wakes a sweeper at rest (it rests until
the first due time it saw), and no other code adds to those indexes, so no producer can leave work due with nobody
woken for it."""

from __future__ import annotations

import re
from pathlib import Path

from fluxhook.store.keys import KEYS
from fluxhook.store.scripts import LuaScript

ROOT = Path(__file__).resolve().parents[3] / "fluxhook"
# The indexes a sweeper at rest waits on (Store.sweep_firsts), as the scripts and the store name them.
_INDEXES = r"((?<!notify_)due\b|due_index|deadlines|batches_canceling|batches_unmade|KEYS\[5\])"
_LUA_WRITE = re.compile(r"ZADD',\s*(key\()?[^,]*" + _INDEXES)
# A re-scoring of what is there already (XX) brings nothing new due that a sweeper at rest could miss.
_LUA_RESCORE = re.compile(r"'XX'")
_PY_WRITE = re.compile(r"\.zadd\([^)]*" + _INDEXES)
_PY_RESCORE = re.compile(r"xx=True")
# Scripts whose index in KEYS[5] or named `due` is no sweep index: the notifiers' own line (notify_due, woken by
# theirs), the idempotency records', and a one-off migration run before any process works.
_OTHER = {"idempotency_begin.lua", "idempotency_finish.lua", "migrate_attempts.lua", "notify_finish.lua", "notify_room.lua",
          "notify_take.lua",
          # The one exception, its reason in the script: a move's lease on work in hand (the guard finds a dead one).
          "work_moves.lua"}


def _writes(pattern, rescore, paths) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{n}" for path in paths
            for n, line in enumerate(path.read_text().splitlines(), 1)
            if pattern.search(line) and not rescore.search(line)]


def test_nothing_but_sweep_index_lua_adds_to_an_index_the_sweep_reads():
    scripts = [p for p in sorted(ROOT.rglob("*.lua")) if p.name not in {"sweep_index.lua", *_OTHER}]
    found = _writes(_LUA_WRITE, _LUA_RESCORE, scripts) + _writes(_PY_WRITE, _PY_RESCORE,
                                                                       [p for p in sorted(ROOT.rglob("*.py"))
                                                                        if p.name != "migrations.py"])
    assert found == [], f"make work due with sweep_index.add (Lua) or the sweep_index_add script: {found}"


def test_the_check_finds_a_write_of_its_own_kind():
    assert _LUA_WRITE.search("redis.call('ZADD', due, now + wait / 1000, job)")
    assert _LUA_WRITE.search("redis.call('ZADD', key(spec.due_index), spec.due, id)")
    assert _PY_WRITE.search("self.connection.zadd(self.keys.batches_canceling, {batch_id: now})")
    assert _PY_RESCORE.search("self.connection.zadd(self.keys.due, {job_id: _score(when)}, xx=True)")
    assert not _LUA_WRITE.search("redis.call('ZADD', pool.line, 0, member)")


def test_work_that_comes_first_wakes_a_sweeper_and_work_due_later_pushes_nothing(connection):
    add = LuaScript(connection, "sweep_index_add")
    connection.delete(KEYS.due, KEYS.sweep_added)

    add([KEYS.due, KEYS.sweep_added], ["12.5", "job_a"])
    assert connection.lpop(KEYS.sweep_added) == b"1"  # a sweeper takes it, and rests until 12.5 at most
    add([KEYS.due, KEYS.sweep_added], ["13.5", "job_c"])
    assert connection.llen(KEYS.sweep_added) == 0  # after what the sweeper saw: its rest ends before it
    add([KEYS.due, KEYS.sweep_added], ["11.5", "job_b"])
    assert connection.lpop(KEYS.sweep_added) == b"1"  # before it: woken, or it would sleep past job_b
    add([KEYS.due, KEYS.sweep_added], ["20", "job_a"])  # moved, not added: nothing looked at, nothing pushed

    assert connection.zrange(KEYS.due, 0, -1, withscores=True) == [(b"job_b", 11.5), (b"job_c", 13.5), (b"job_a", 20)]
    assert connection.llen(KEYS.sweep_added) == 0
