"""The values that hold work (fluxhook/core/holds.py): at most eight of them independent, every other written from
them; where one bounds another, the bound holds."""

from __future__ import annotations

import ast
from pathlib import Path

from fluxhook.core import holds
from fluxhook.core.bfl_limits import CALL_BOUND, EXCHANGE_DEADLINE, TASK_DEADLINE

MOST_INDEPENDENT = 8


def _values() -> dict[str, ast.expr]:
    """Each value holds.py assigns, by name: the expression it is written as."""
    tree = ast.parse(Path(holds.__file__).read_text())
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def _imported() -> set[str]:
    tree = ast.parse(Path(holds.__file__).read_text())
    return {alias.asname or alias.name for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.module != "__future__" for alias in node.names}


def _number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _independent() -> list[str]:
    """The values a reader could change on their own: those written as a number, and those imported that any uses."""
    values = _values()
    used = {node.id for value in values.values() for node in ast.walk(value) if isinstance(node, ast.Name)}
    return [name for name, value in values.items() if _number(value)] + sorted(_imported() & used)


def test_at_most_eight_values_are_independent():
    independent = _independent()
    assert len(independent) <= MOST_INDEPENDENT, f"{len(independent)} independent values: {independent}"


def test_a_value_written_from_others_adds_no_seconds_of_its_own():
    # A number in an expression is a ratio (a factor or a divisor: four deadlines, a third of a grace), never seconds
    # added: those would be one more independent value, uncounted.
    for name, value in _values().items():
        if _number(value):
            continue
        ratios = {id(operand) for node in ast.walk(value)
                  if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div))
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
