"""The check line (fluxhook/store/check_line.py) on a real Redis: the sweep's checks are taken in turn across keys by
the slots' own rule (lua/fair_turns.lua), a key's single jobs before its batch items, then the earliest deadline; a job
claimed again waits once, with its newest claim; a take that leaves checks in line wakes another dispatcher; a take is
one command; each BFL account's checks wait in a line of their own, taken at most as many as the account has room
for, the turns across keys one rule over every line."""

from __future__ import annotations

import time

import pytest

from fluxhook.core import job as st
from fluxhook.core.job import Job, new_job_id
from fluxhook.store.check_line import Check, CheckLine
from fluxhook.store.keys import KEYS
from fluxhook.store.wakes import TIMEOUT, WORK, Wakes
from helpers import commands_during

DB = 3  # the connection fixture's


@pytest.fixture()
def checks(connection) -> CheckLine:
    return CheckLine(connection)


def _jobs(store, count: int, key_id: str | None = None, batch_id: str | None = None,
          deadline: float | None = None, account: str | None = None) -> list[str]:
    ids = []
    for _ in range(count):
        now = time.time()
        job = Job(id=new_job_id(now), status=st.SUBMITTED, model="flux-2-pro", bfl_id=f"task-{new_job_id()}",
                  key_id=key_id, batch_id=batch_id, created_at=now, updated_at=now, deadline=deadline,
                  account=account)
        store.create(job)
        ids.append(job.id)
    return ids


def test_another_keys_check_goes_within_one_turn_of_a_keys_backlog(store, checks):
    backlog = _jobs(store, 200, key_id="key_a")
    checks.add(backlog, claim=100.0)
    [other] = _jobs(store, 1, key_id="key_b")
    checks.add([other], claim=101.0)

    first = [check.job_id for check in checks.take(2)]
    # B's one check waited for one of A's, not for A's 200 (first in, first out: 201st).
    assert other in first
    assert checks.waiting() == 199
    # A's turns then go on in the order its checks were made.
    assert [check.job_id for check in checks.take(199)] == [job for job in backlog if job not in first]


def test_a_keys_single_job_is_checked_before_its_own_batch_items(store, checks):
    items = _jobs(store, 50, key_id="key_a", batch_id="batch_1")
    checks.add(items, claim=100.0)
    [single] = _jobs(store, 1, key_id="key_a")
    checks.add([single], claim=100.0)
    [admins] = _jobs(store, 1)  # made with an admin token: an owner of its own

    checks.add([admins], claim=100.0)
    taken = [check.job_id for check in checks.take(3)]
    assert taken[0] == single and set(taken) >= {single, admins}
    assert [check.job_id for check in checks.take(100)] == [job for job in items if job not in taken]


def test_a_keys_job_with_the_earliest_deadline_is_checked_first_and_another_key_keeps_its_turn(store, checks):
    now = time.time()
    plain = _jobs(store, 3, key_id="key_a")
    [late] = _jobs(store, 1, key_id="key_a", deadline=now + 600)
    [soon] = _jobs(store, 1, key_id="key_a", deadline=now + 60)
    [other] = _jobs(store, 1, key_id="key_b")
    checks.add([*plain, late, soon, other], claim=100.0)
    taken = [check.job_id for check in checks.take(6)]
    assert taken.index(other) <= 1  # B's one check keeps its turn
    assert [job for job in taken if job != other] == [soon, late, *plain]


def test_a_job_claimed_again_while_it_waits_is_in_line_once_with_its_newest_claim(store, checks):
    [job] = _jobs(store, 1, key_id="key_a")
    checks.add([job], claim=100.0)
    checks.add([job], claim=190.0)  # its claim lapsed before a checker was free: the sweep claimed it again
    assert checks.waiting() == 1
    assert checks.take(5) == [Check(job, 190.0)]
    assert checks.take(5) == [] and not checks.connection.exists(KEYS.check_claims)


def test_a_take_that_leaves_checks_in_line_wakes_another_dispatcher_and_one_that_empties_it_none(store, checks):
    wakes = Wakes(checks.connection)
    checks.add(_jobs(store, 3, key_id="key_a"), claim=100.0)
    assert wakes.wait(KEYS.check_added, 0.05) == WORK  # the sweep's add woke one
    assert len(checks.take(2)) == 2
    assert wakes.wait(KEYS.check_added, 0.05) == WORK  # one left: another process's dispatcher takes it
    assert len(checks.take(2)) == 1
    assert wakes.wait(KEYS.check_added, 0.05) == TIMEOUT


def _sent(checks: CheckLine, action) -> tuple[list[str], list[str]]:
    """The commands ``action`` sent, and those its scripts ran, by name."""
    sent = [c for c in commands_during(checks.connection, DB, action) if not c["command"].startswith("SELECT")]
    return ([c["command"].split()[0] for c in sent if c.get("client_type") != "lua"],
            [c["command"].split()[0] for c in sent if c.get("client_type") == "lua"])


def test_a_take_is_one_command_and_one_of_an_empty_line_runs_one_look(store, checks):
    checks.add(_jobs(store, 20, key_id="key_a") + _jobs(store, 20, key_id="key_b"), claim=100.0)
    checks.take(1)  # the script loaded
    assert _sent(checks, lambda: checks.take(4))[0] == ["EVALSHA"]
    checks.take(100)
    assert _sent(checks, lambda: checks.take(4)) == (["EVALSHA"], ["ZRANGEBYLEX"])


def test_each_accounts_checks_wait_in_its_own_line_and_a_take_gives_each_account_at_most_its_room(store, connection):
    checks = CheckLine(connection, accounts=("x", "y"))
    x_backlog = _jobs(store, 10, key_id="key_a", account="x")
    y_jobs = _jobs(store, 3, key_id="key_a", account="y")
    # No task yet, or one of an account no longer configured: the first account's line.
    unsent, removed = _jobs(store, 1, key_id="key_b"), _jobs(store, 1, key_id="key_b", account="gone")
    checks.add([*x_backlog, *y_jobs, *unsent, *removed], claim=100.0)
    assert checks.waiting_by_account() == {"x": 12, "y": 3} and checks.waiting() == 15
    assert connection.zcard(KEYS.check_line("x")) == 12 and connection.zcard(KEYS.check_line("y")) == 3

    taken = checks.take(10, {"x": 2, "y": 5})
    by_account = {account: [c.job_id for c in taken if c.account == account] for account in ("x", "y")}
    assert by_account["y"] == y_jobs and len(by_account["x"]) == 2
    # Key b's one turn comes among the first, in x's line beside key a's backlog: the turns are one rule.
    assert set(by_account["x"]) & {*unsent, *removed}
    assert checks.take(10, {"y": 5}) == []  # x has no room: its checks wait
    assert len(checks.take(20)) == 10 and checks.waiting() == 0


def test_a_take_wakes_another_dispatcher_for_checks_it_leaves_for_want_of_room_and_reads_no_line_without_room(
        store, connection):
    checks, wakes = CheckLine(connection, accounts=("x", "y")), Wakes(connection)
    checks.add(_jobs(store, 3, key_id="key_a", account="x"), claim=100.0)
    assert wakes.wait(KEYS.check_added, 0.05) == WORK
    assert len(checks.take(10, {"x": 2, "y": 2})) == 2  # x's room ran out with one of x's left
    assert wakes.wait(KEYS.check_added, 0.05) == WORK
    checks.take(1, {"y": 1})  # the script loaded
    # x without room: its line is not read, and its check left there wakes no one: a checker of x's that ends does.
    assert _sent(checks, lambda: checks.take(2, {"x": 0, "y": 2})) == (["EVALSHA"], ["ZRANGEBYLEX"])
    assert wakes.wait(KEYS.check_added, 0.05) == TIMEOUT
    assert len(checks.take(2, {"x": 2})) == 1
