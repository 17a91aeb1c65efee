"""The values that hold work (fluxhook/core/holds.py): at most ten of them independent, every other written from
them; where one bounds another, the bound holds; and no hold is written as a number anywhere else in the tree (Python or
Lua): devtools/holds_scan.py follows each, with no place exempt."""

from __future__ import annotations

import ast
from pathlib import Path

from devtools import holds_scan
from devtools.holds_scan import Scan, holds_values
from devtools.processes import ROOT
from fluxhook.core import holds
from fluxhook.core.bfl_limits import CALL_BOUND, EXCHANGE_DEADLINE, TASK_DEADLINE

MOST_INDEPENDENT = 10


def _values() -> dict[str, ast.expr]:
    """Each hold holds.py assigns (its records kept left out), by name: the expression it is written as."""
    return holds_values(Path(holds.__file__).read_text())[0]


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def test_at_most_ten_values_are_independent():
    independent = holds_scan.independent(Path(holds.__file__).read_text())
    assert len(independent) <= MOST_INDEPENDENT, f"{len(independent)} independent values: {independent}"


def test_a_value_written_from_others_adds_no_seconds_of_its_own():
    # A number in an expression is a ratio (a factor or a divisor: four deadlines, a third of a grace), never seconds
    # added: those would be one more independent value, uncounted.
    for name, value in _values().items():
        if _number(value):
            continue
        ratios = {id(operand) for node in ast.walk(value)
                  if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div, ast.FloorDiv))
                  for operand in (node.left, node.right)}
        added = [node.value for node in ast.walk(value) if _number(node) and id(node) not in ratios]
        assert not added, f"{name} adds {added} to what it is written from"


def test_a_supervisor_outwaits_every_wait_of_its_members_stop_within_the_platforms_grace():
    waits = {"the hand-back": holds.IMMINENT_SHUTDOWN_DELAY + holds.HAND_BACK_GRACE,
             "the sends": holds.SEND_STOP_TIMEOUT, "the notifications": holds.NOTIFY_STOP_TIMEOUT}
    for what, wait in waits.items():
        assert holds.STOP_TIMEOUT > wait, what
    assert holds.NOTIFY_STOP_TIMEOUT >= holds.ATTEMPT_DEADLINE + 1  # an attempt taken as the stop came ends in it
    assert holds.STOP_TIMEOUT < holds.PLATFORM_STOP_GRACE


def test_each_lease_outlasts_the_work_it_holds():
    assert holds.ATTEMPT_LEASE > holds.ATTEMPT_DEADLINE
    assert holds.SUBMIT_LEASE >= CALL_BOUND > EXCHANGE_DEADLINE
    assert holds.CLAIM_LEASE >= CALL_BOUND
    assert holds.SLOT_LEASE >= holds.SUBMIT_LEASE + TASK_DEADLINE + holds.CLAIM_LEASE
    assert holds.RESERVATION_LEASE >= TASK_DEADLINE + CALL_BOUND
    assert holds.DOWNLOAD_LOCK_TTL > holds.DOWNLOAD_TIMEOUT
    assert holds.QUEUE_ROOM_LEASE > holds.BATCH_MAKING_LEASE  # the sweep cuts a stopped making short first
    assert holds.HEARTBEAT_GRACE > holds.JOB_MONITORING_INTERVAL  # a beat late is not a task abandoned
    # An abandoned task's heartbeat lapses, then a dead lane's cleaning claim: no later than a lost check comes back.
    assert holds.JOB_MONITORING_INTERVAL + holds.HEARTBEAT_GRACE + holds.CLEANING_LOCK_TTL <= holds.CLAIM_LEASE
    assert holds.WAITING_LEASE > holds.NEXT_LEASE  # a boundable job holds the next one alone back the shorter


# --- No hold written as a number outside holds.py ---

def test_no_hold_is_written_as_a_number_outside_holds_py():
    found = Scan.of_tree(ROOT).findings()
    assert not found, "a hold written as a number outside core/holds.py:\n" + "\n".join(map(str, found))


def test_every_record_kept_is_a_whole_number_of_seconds_written_from_the_others_or_its_own():
    # Redis keeps a key's TTL in whole seconds (or milliseconds from them): a record's length is one.
    _, records = holds_values(Path(holds.__file__).read_text())
    assert records, "holds.py's last section names the records kept"
    for name in records:
        value = getattr(holds, name)
        assert isinstance(value, int) and value > 0, name
