"""fluxhook/store/owners.py's ``DEFAULT_WEIGHT``: the one home of an owner's weight when none is set, which the
app keys' records and the slot scripts (``lua/slots_prelude.lua``, given it as an argument) both use."""

from __future__ import annotations

import pytest

import fluxhook.store.slots as slots_module
from fluxhook.lifecycle.steps import key_fields
from fluxhook.store.app_keys import AppKey
from fluxhook.store.keys import KEYS
from fluxhook.store.owners import CLOCK, DEFAULT_WEIGHT, owner_of
from fluxhook.store.slots import Slots
from slot_helpers import _config, _queued, as_key


def _cost_of_a_turn(connection, owner: str) -> float:  # noqa: F811
    """How far the owner's last turn moved its pass past the clock: 1 / its weight."""
    return float(connection.hget(KEYS.fair_passes, owner)) - float(connection.hget(KEYS.fair_passes, CLOCK))


def test_a_key_made_without_a_weight_gets_the_default():
    assert AppKey(id="key_x", name="x", prefix="fhk_x", secret_sha256="0" * 64).weight == DEFAULT_WEIGHT
    key, _ = key_fields.new_key({"name": "x"}, now=0.0)
    assert key.weight == DEFAULT_WEIGHT
    values, unset = key_fields.parse({"weight": None}, creating=False, now=0.0)
    assert values == {"weight": DEFAULT_WEIGHT} and unset == ()


@pytest.mark.parametrize("default", [DEFAULT_WEIGHT, 4])
def test_the_slot_scripts_take_an_owner_without_a_weight_at_the_python_default(store, connection, monkeypatch,  # noqa: F811
                                                                              default):
    monkeypatch.setattr(slots_module, "DEFAULT_WEIGHT", default)
    slots = Slots(connection, _config(bfl_max_active=5))
    connection.hset(KEYS.share_weights, "key_w", 2)
    assert slots.acquire(as_key(store, _queued(store), "key_w"))
    turn = _cost_of_a_turn(connection, "key_w") * 2  # a turn's slot time, before any task taught an estimate
    assert turn > 0
    assert slots.acquire(as_key(store, _queued(store), "key_d"))  # no weight recorded
    assert _cost_of_a_turn(connection, "key_d") == pytest.approx(turn / default)


def _lua_members(connection, owner: str, job_id: str, item: str) -> list:
    """What ``lua/members.lua`` makes of an owner, a job and a member, run by Redis as every script runs it."""
    from fluxhook.store.scripts import source
    script = source("members") + ("\nreturn {members.member(ARGV[1], ARGV[2]), members.owner_first(ARGV[1]),"
                                  " members.owner_last(ARGV[1]), members.member_job(ARGV[1], ARGV[3]),"
                                  " members.member_owner(ARGV[3])}")
    return [v.decode() if isinstance(v, bytes) else v for v in connection.eval(script, 0, owner, job_id, item)]


@pytest.mark.parametrize("owner", ["admin", "key_0123456789abcdef", "a-b_C9"])
def test_a_lines_member_is_made_and_read_alike_by_python_and_the_scripts(connection, owner):
    from fluxhook.core.job import new_job_id
    from fluxhook.store.owners import member, member_job, owner_range

    job_id = new_job_id()
    item = member(owner, job_id)
    assert _lua_members(connection, owner, job_id, item) == [item, *owner_range(owner), job_id, owner]
    assert member_job(item) == job_id
    # The owner's range holds its members and no other owner's: a longer id sharing its start sorts outside.
    connection.delete("t:line")
    connection.zadd("t:line", {item: 0, member(owner + "x", job_id): 0, member(owner[:-1], job_id): 0})
    assert [m.decode() for m in connection.zrangebylex("t:line", *owner_range(owner))] == [item]


@pytest.mark.parametrize("owner", ["admin", "key_0123456789abcdef"])
def test_a_batch_items_member_sorts_after_its_owners_single_jobs_and_reads_back_alike(connection, owner):
    from fluxhook.core.job import new_job_id
    from fluxhook.store.owners import forms, member, member_job, owner_range
    from fluxhook.store.scripts import source

    item_id, single_id = new_job_id(1_000.0), new_job_id(2_000.0)  # the item is older
    bulk = member(owner, item_id, bulk=True)
    script = source("members") + ("\nreturn {members.member(ARGV[1], ARGV[2], true), members.member_job(ARGV[1], ARGV[3]),"
                                  " members.forms(ARGV[1], ARGV[2])}")
    made, read, *made_forms = [v.decode() for v in connection.eval(script, 0, owner, item_id, bulk)]
    assert (made, read, member_job(bulk)) == (bulk, item_id, item_id)
    assert made_forms == [member(owner, item_id), bulk] == forms(owner, item_id, None)
    connection.delete("t:line")
    connection.zadd("t:line", {bulk: 0, member(owner, single_id): 0, member(owner + "x", single_id): 0})
    assert [m.decode() for m in connection.zrangebylex("t:line", *owner_range(owner))] == [member(owner, single_id), bulk]


@pytest.mark.parametrize("owner", ["admin", "key_0123456789abcdef"])
def test_a_job_with_a_deadline_goes_before_its_owners_jobs_without_one_earliest_first_and_reads_back_alike(connection,
                                                                                                          owner):
    from fluxhook.core.job import new_job_id
    from fluxhook.store.owners import forms, member, member_job, owner_range
    from fluxhook.store.scripts import source

    plain, late, soon, item, late_item = (new_job_id(t) for t in (1_000.0, 2_000.0, 3_000.0, 500.0, 600.0))
    deadlines = {late: 1_800_000_100.75, soon: 1_800_000_000.0, item: 1_700_000_000.5, plain: None, late_item: None}
    bulk = {item, late_item}
    made = {job: member(owner, job, bulk=job in bulk, deadline=deadlines[job]) for job in deadlines}
    script = source("members") + ("\nlocal d = ARGV[4] ~= '' and ARGV[4] or nil"
                                  "\nreturn {members.member(ARGV[1], ARGV[2], ARGV[3] == '1', d),"
                                  " members.member_job(ARGV[1], members.member(ARGV[1], ARGV[2], ARGV[3] == '1', d)),"
                                  " members.forms(ARGV[1], ARGV[2], d)}")
    for job, deadline in deadlines.items():
        # The scripts take a deadline as its record keeps it (text).
        lua = connection.eval(script, 0, owner, job, "1" if job in bulk else "0", "" if deadline is None else repr(deadline))
        lua_member, lua_job, *lua_forms = [v.decode() for v in lua]
        assert (lua_member, lua_job, member_job(made[job])) == (made[job], job, job)
        assert lua_forms == forms(owner, job, deadline) and made[job] in lua_forms
    assert made[soon] == f"{owner}:1800000000.{soon}" and made[item] == f"{owner}:~1700000000.{item}"
    # An older release's (unranked) member of a job with a deadline is among its forms, to be taken out.
    assert member(owner, late) in forms(owner, late, deadlines[late])
    connection.delete("t:line")
    connection.zadd("t:line", dict.fromkeys(made.values(), 0))
    ordered = [member_job(m.decode()) for m in connection.zrangebylex("t:line", *owner_range(owner))]
    # Single jobs first, each form earliest deadline first, then those without one, in creation order.
    assert ordered == [soon, late, plain, item, late_item]


def test_the_clocks_field_is_named_alike_by_python_and_the_scripts_and_is_no_owners(connection):
    from fluxhook.store.scripts import source

    assert connection.eval(source("fair_turns") + "\nreturn fair_turns.CLOCK", 0).decode() == CLOCK
    with pytest.raises(ValueError):
        owner_of(CLOCK)
