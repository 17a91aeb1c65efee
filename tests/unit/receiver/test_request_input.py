"""What a request asks (receiver/request_input.py): its ``Prefer: wait=N``, read the lenient way."""

from __future__ import annotations

import pytest

from receiver.request_input import requested_wait


@pytest.mark.parametrize("header,seconds", [
    ("wait=5", 5), ("WAIT = 10", 10), ("respond-async, wait=100", 60), ("wait=0", 1), ("wait=-3", 1),
    ('wait="7"', 7), ("wait=2.9", 2), ("wait=inf", 60), ("handling=lenient; x=1, wait=3", 3),
])
def test_a_wait_is_read_and_clamped(header, seconds):
    assert requested_wait(header) == seconds


@pytest.mark.parametrize("header", [None, "", "wait", "wait=abc", "wait=nan", "return=minimal", "waiting=3"])
def test_anything_else_asks_for_no_wait(header):
    assert requested_wait(header) is None
