"""An account's running cooldown read alike by Python (``store.cooldowns.current``, the accounts view's) and the slot
scripts (``slots_accounts.cooldown_until`` in ``lua/slots_accounts.lua``, what a wait names): both run over the same
cooldown records on a real Redis, and any answer that differs fails. And BFL's acceptance of a task (the effect
``AccountAccepted``) ends only a cooldown that is over, and the refusals in a row."""

from __future__ import annotations

import time

import pytest

from fluxhook.core.accounts import DEFAULT_POOL
from fluxhook.store import cooldowns
from fluxhook.store.effects import AccountAccepted, Effects, Tallies
from fluxhook.store.keys import KEYS
from helpers import commands_during

NOW = time.time()
RECORDS = {
    "none": {},
    "running": {"until": repr(NOW + 30), "reason": "unavailable"},
    "over": {"until": repr(NOW - 1), "reason": "unavailable"},
    "over, its probe out": {"until": repr(NOW - 1), "reason": "unavailable", "probe": "job_x"},
    "lasting, past its look": {"until": repr(NOW - 5), "reason": "insufficient_credits", "lasting": "1"},
    "lasting": {"until": repr(NOW + 30), "reason": "daily_credit_limit", "lasting": "1"},
}


def _by_lua(connection, key: str) -> float | None:
    """What slots_accounts.lua's cooldown_until makes of the record, with the script's own reading of an account."""
    from fluxhook.store.scripts import source

    script = source("slots_accounts") + """
local ends = slots_accounts.cooldown_until({cooling = KEYS[1]}, tonumber(ARGV[1]))
return ends and string.format('%.17g', ends) or false"""
    answer = connection.eval(script, 1, key, repr(NOW))
    return float(answer) if answer else None


@pytest.mark.parametrize("case", sorted(RECORDS))
def test_python_and_the_slot_scripts_read_a_cooldown_alike(connection, case):
    key = KEYS.cooling("eu")
    connection.delete(key)
    if RECORDS[case]:
        connection.hset(key, mapping=RECORDS[case])
    fields = connection.hmget(key, "until", "reason", "lasting")

    by_python = cooldowns.current(fields, NOW)

    assert _by_lua(connection, key) == (None if by_python is None else by_python.until)


@pytest.mark.parametrize("case", sorted(RECORDS))
def test_an_accepted_task_ends_only_a_cooldown_that_is_over(connection, case):
    key, strikes = KEYS.cooling("eu"), [KEYS.strikes(DEFAULT_POOL, "eu"), KEYS.strikes(cooldowns.ACCOUNT_WIDE, "eu")]
    connection.delete(key)
    if RECORDS[case]:
        connection.hset(key, mapping=RECORDS[case])
    connection.mset({name: 3 for name in strikes})
    Effects(connection, KEYS, 60, Tallies(connection).add).apply([AccountAccepted("eu", DEFAULT_POOL, NOW)])
    assert not connection.exists(*strikes)  # its refusals in a row start again from none
    # only an ended one goes
    assert connection.exists(key) == (case not in ("none", "over", "over, its probe out"))


def test_an_accepted_task_with_no_refusal_and_no_cooldown_to_end_costs_one_exists(connection):
    connection.delete(KEYS.cooling("eu"), KEYS.strikes(DEFAULT_POOL, "eu"))
    connection.set(KEYS.strikes(DEFAULT_POOL, "us"), 2)  # another account's refusals: not this one's to end
    db = connection.connection_pool.connection_kwargs.get("db", 0)
    effects = Effects(connection, KEYS, 60, Tallies(connection).add)
    commands = [c["command"] for c in commands_during(connection, db, lambda: effects.apply(
        [AccountAccepted("eu", DEFAULT_POOL, NOW)])) if not c["command"].startswith(("EVAL", "SELECT"))]
    assert [c.split(" ")[0] for c in commands] == ["EXISTS"], commands
    assert connection.get(KEYS.strikes(DEFAULT_POOL, "us")) == b"2"
