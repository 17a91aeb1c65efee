"""The rule of a slot kept for a task BFL runs on after its job ended (fluxhook/lifecycle/steps/running_on.py,
``hold_over``): free once BFL says the task ended or its hour is over, held while BFL runs it. The slot kept and given
back on a real Redis: tests/unit/store/test_slots_running_on.py; by a cancel, a callback and the sweep's polls:
tests/unit/lifecycle/test_canceling.py."""

from __future__ import annotations

import pytest

from fluxhook.core import job as st
from fluxhook.lifecycle.steps.running_on import hold_over
from fluxhook.lifecycle.steps.schedule import POLL_DEADLINE

SENT = 1_000_000.0


@pytest.mark.parametrize("word", [st.BFL_READY, st.BFL_ERROR, st.BFL_FAILED, st.BFL_REQUEST_MODERATED,
                                  st.BFL_CONTENT_MODERATED, st.BFL_TASK_NOT_FOUND])
def test_a_word_that_the_task_ended_frees_the_slot(word):
    assert hold_over(word, SENT, SENT + 5)


@pytest.mark.parametrize("word", [st.BFL_PENDING, "Reasoning", "Generating", "Processing", None])
def test_a_running_word_or_none_holds_it_within_the_tasks_hour(word):
    assert not hold_over(word, SENT, SENT + POLL_DEADLINE - 1)


def test_the_tasks_hour_frees_it_whatever_bfl_said():
    assert hold_over(None, SENT, SENT + POLL_DEADLINE) and hold_over(st.BFL_PENDING, SENT, SENT + POLL_DEADLINE + 60)
