"""The values that hold work (fluxhook/core/holds.py): where one bounds another, the bound holds."""

from __future__ import annotations

from fluxhook.core import holds
from fluxhook.core.bfl_limits import CALL_BOUND, EXCHANGE_DEADLINE, TASK_DEADLINE


def test_a_supervisor_outwaits_every_wait_of_its_members_stop_within_the_platforms_grace():
    waits = {"the hand-back": holds.IMMINENT_SHUTDOWN_DELAY + holds.HAND_BACK_GRACE,
             "the sends": holds.SEND_STOP_TIMEOUT, "the notifications": holds.NOTIFY_STOP_TIMEOUT}
    for what, wait in waits.items():
        assert holds.STOP_TIMEOUT > wait, what
    assert holds.NOTIFY_STOP_TIMEOUT > holds.ATTEMPT_DEADLINE
    assert holds.STOP_TIMEOUT < holds.PLATFORM_STOP_GRACE


def test_each_lease_outlasts_the_work_it_holds():
    assert holds.ATTEMPT_LEASE > holds.ATTEMPT_DEADLINE
    assert holds.SUBMIT_LEASE >= CALL_BOUND > EXCHANGE_DEADLINE
    assert holds.CLAIM_LEASE >= CALL_BOUND
    assert holds.SLOT_LEASE > TASK_DEADLINE
    assert holds.RESERVATION_LEASE >= TASK_DEADLINE + CALL_BOUND
    assert holds.DOWNLOAD_LOCK_TTL > holds.DOWNLOAD_TIMEOUT
    assert holds.QUEUE_ROOM_LEASE > holds.BATCH_MAKING_LEASE  # the sweep cuts a stopped making short first
    assert holds.HEARTBEAT_GRACE > holds.JOB_MONITORING_INTERVAL  # a beat late is not a task abandoned
