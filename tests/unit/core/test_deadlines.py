"""Cancel-After and how a job ended on purpose ends (fluxhook/core/deadlines.py)."""

from __future__ import annotations

import pytest

from fluxhook.core import deadlines
from fluxhook.core import job as st
from fluxhook.core.errors import InvalidCancelAfter, InvalidRequest


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1h", 3600), ("5s", 5), ("24h", 86400), ("23h59m60s", 86400),
    ("90m", 5400), ("1h0m5s", 3605), ("2M", 120), (" 45s ", 45), ("0h0m5s", 5),
])
def test_a_duration_is_read_as_seconds(text, seconds):
    assert deadlines.parse_cancel_after(text) == seconds


@pytest.mark.parametrize("text", [
    "", " ", "30", "s", "h", "1.5m", "-5s", "5 s", "30sec", "1m30", "30s5m", "5m1h", "1d", "PT5M", "5s5s",
    "99999999999999999999s", "\u0665s",
])
def test_a_malformed_value_is_refused_saying_what_to_send(text):
    with pytest.raises(InvalidCancelAfter) as refused:
        deadlines.parse_cancel_after(text)
    assert refused.value.status == 400 and refused.value.code == "invalid_cancel_after"
    assert "30s, 5m or 1h30m" in refused.value.message


@pytest.mark.parametrize("text", ["4s", "0s", "24h1s", "25h", "1441m", "86401s"])
def test_a_value_outside_5s_to_24h_is_refused_naming_the_range(text):
    with pytest.raises(InvalidCancelAfter, match="from 5s to 24h"):
        deadlines.parse_cancel_after(text)


def test_the_refusal_is_no_invalid_request_so_the_drop_in_answers_400_not_bfls_422():
    assert not issubclass(InvalidCancelAfter, InvalidRequest)


def test_a_cancel_ends_every_running_job_canceled_and_leaves_an_ended_one():
    assert deadlines.cancel_ending(st.QUEUED).status == st.CANCELED
    assert "nothing was charged" in deadlines.cancel_ending(st.QUEUED).message
    for sent in (st.SUBMITTED, st.READY):
        ending = deadlines.cancel_ending(sent)
        assert (ending.status, ending.code) == (st.CANCELED, "canceled") and "charge stays" in ending.message
    for ended in st.TERMINAL:
        assert deadlines.cancel_ending(ended) is None


def test_a_deadline_aborts_an_unsent_job_and_cancels_a_sent_one():
    assert deadlines.deadline_ending(st.QUEUED) == deadlines.ABORTED_AT_DEADLINE
    assert deadlines.ABORTED_AT_DEADLINE.status == st.ABORTED
    for sent in (st.SUBMITTED, st.READY):
        assert deadlines.deadline_ending(sent) == deadlines.CANCELED_AT_DEADLINE
    assert deadlines.CANCELED_AT_DEADLINE.code == deadlines.ABORTED_AT_DEADLINE.code == "deadline_exceeded"
    for ended in st.TERMINAL:
        assert deadlines.deadline_ending(ended) is None


def test_every_ending_is_a_move_the_rules_allow():
    for status in st.ACTIVE:
        for rule in (deadlines.cancel_ending, deadlines.deadline_ending):
            ending = rule(status)
            assert ending is not None and st.can_transition(status, ending.status)


def test_passed():
    assert not deadlines.passed(None, 10.0)
    assert not deadlines.passed(10.5, 10.0)
    assert deadlines.passed(10.0, 10.0) and deadlines.passed(9.0, 10.0)
