"""An Idempotency-Key's claim (receiver/idempotency.py) outlasts the longest a first request can take."""

from __future__ import annotations

from fluxhook.core.bfl_limits import CALL_BOUND
from receiver.idempotency import KEY_CLAIM_LEASE
from receiver.prefer import MAX_WAIT


def test_the_lease_outlasts_the_longest_a_first_request_can_take():
    assert KEY_CLAIM_LEASE > CALL_BOUND + MAX_WAIT
