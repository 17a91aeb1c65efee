"""Job statuses, the moves between them and what BFL's status words mean (fluxhook/core/transitions.py)."""

from __future__ import annotations

import pytest

from fluxhook.core import transitions as st


@pytest.mark.parametrize("terminal", ["stored", "failed", "moderated", "expired", "canceled", "aborted"])
def test_terminal_statuses_have_no_way_out(terminal):
    assert terminal in st.TERMINAL
    assert st.TRANSITIONS[terminal] == frozenset()
    for other in st.STATUSES:
        assert not st.can_transition(terminal, other)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("queued", "submitted"),
        ("queued", "failed"),
        ("submitted", "ready"),
        ("submitted", "failed"),
        ("submitted", "moderated"),
        ("submitted", "expired"),
        ("ready", "stored"),
        ("ready", "failed"),
        ("ready", "moderated"),
        ("ready", "expired"),
        ("ready", "submitted"),  # only when BFL refutes an unproven Ready report
        ("queued", "canceled"),
        ("queued", "aborted"),  # its deadline passed before it was sent
        ("submitted", "canceled"),
        ("ready", "canceled"),
    ],
)
def test_allowed_transitions(current, new):
    assert st.can_transition(current, new)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        ("submitted", "queued"),
        ("ready", "queued"),
        ("stored", "ready"),
        ("queued", "stored"),
        ("queued", "ready"),
        ("submitted", "stored"),
        ("queued", "queued"),
        ("submitted", "submitted"),
        ("ready", "ready"),
        ("failed", "stored"),
        ("expired", "ready"),
        ("moderated", "submitted"),
        ("stored", "failed"),
        ("nonsense", "submitted"),
        ("submitted", "nonsense"),
        ("submitted", "aborted"),  # sent: it ends canceled, its charge kept
        ("ready", "aborted"),
        ("canceled", "queued"),
        ("aborted", "submitted"),
        ("canceled", "stored"),  # a result arriving after a cancel is never stored
    ],
)
def test_refused_transitions(current, new):
    assert not st.can_transition(current, new)


def test_status_sets_match_spec():
    assert set(st.STATUSES) == {"queued", "submitted", "ready", "stored", "failed", "moderated", "expired", "canceled",
                                "aborted"}
    assert st.TERMINAL == {"stored", "failed", "moderated", "expired", "canceled", "aborted"}
    assert set(st.ACTIVE) == {"queued", "submitted", "ready"}
    assert set(st.TRANSITIONS) == set(st.STATUSES)


def test_every_active_status_can_reach_a_terminal_one_and_stored_is_reachable_from_queued():
    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in st.TRANSITIONS[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for status in st.ACTIVE:
        assert reachable(status) & st.TERMINAL
    assert {"submitted", "ready", "stored"} <= reachable("queued")
    for terminal in st.TERMINAL:
        assert reachable(terminal) == set()


@pytest.mark.parametrize(
    ("new", "sources"),
    [
        ("queued", set()),
        ("submitted", {"queued", "ready"}),
        ("ready", {"submitted"}),
        ("stored", {"ready"}),
        ("failed", {"queued", "submitted", "ready"}),
        ("moderated", {"submitted", "ready"}),
        ("expired", {"submitted", "ready"}),
        ("canceled", {"queued", "submitted", "ready"}),
        ("aborted", {"queued"}),
    ],
)
def test_sources_for(new, sources):
    result = st.sources_for(new)
    assert set(result) == sources
    assert not set(result) & st.TERMINAL
    for source in result:
        assert st.can_transition(source, new)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Ready", "Ready"),
        ("ready", "Ready"),
        ("READY", "Ready"),
        ("SUCCESS", "Ready"),
        ("success", "Ready"),
        ("Pending", "Pending"),
        ("PENDING", "Pending"),
        ("Error", "Error"),
        ("ERROR", "Error"),
        ("failed", "Failed"),
        ("Failed", "Failed"),
        ("FAILED", "Failed"),
        ("Request Moderated", "Request Moderated"),
        ("request_moderated", "Request Moderated"),
        ("REQUEST-MODERATED", "Request Moderated"),
        ("Content Moderated", "Content Moderated"),
        ("content moderated", "Content Moderated"),
        ("CONTENT_MODERATED", "Content Moderated"),
        ("Task not found", "Task not found"),
        ("TASK NOT FOUND", "Task not found"),
        ("task_not_found", "Task not found"),
        ("  Ready  ", "Ready"),
        ("Request  Moderated", "Request Moderated"),
        ("banana", None),
        ("", None),
        ("Readyy", None),
        ("Moderated", None),
        ("not found", None),
    ],
)
def test_normalize_bfl_status(word, expected):
    assert st.normalize_bfl_status(word) == expected


@pytest.mark.parametrize(
    ("bfl_status", "status", "code"),
    [
        ("Request Moderated", "moderated", "moderated"),
        ("Content Moderated", "moderated", "moderated"),
        ("Task not found", "failed", "task_not_found"),
        ("Error", "failed", "bfl_error"),
        ("Failed", "failed", "bfl_error"),
    ],
)
def test_terminal_outcome(bfl_status, status, code):
    outcome_status, outcome_code, message = st.terminal_outcome(bfl_status)
    assert (outcome_status, outcome_code) == (status, code)
    assert outcome_status in st.TERMINAL
    assert isinstance(message, str) and message.strip()


def test_every_bfl_failure_word_has_a_terminal_outcome():
    for word in st.BFL_FAILURES:
        assert st.terminal_outcome(word)[0] in st.TERMINAL
    assert st.BFL_READY not in st.BFL_FAILURES
    assert st.BFL_PENDING not in st.BFL_FAILURES


def test_an_end_with_the_task_running_holds_the_slot_it_would_free():
    assert st.consequences("canceled") == st.Consequences(free_slot=True, leave_line=True, terminal=True,
                                                          hold_slot=False)
    # BFL has no cancel: a job ended on purpose keeps a slot of BFL's task (the store holds it only while BFL has one).
    assert st.consequences("canceled", task_runs=True).hold_slot
    assert st.consequences("aborted", task_runs=True).hold_slot
    # No end, no hold: a move to ready frees its slot, a change of fields touches none.
    assert not st.consequences("ready", task_runs=True).hold_slot and st.consequences("ready").free_slot
    assert st.consequences("", task_runs=True) == st.Consequences(False, False, False, False)
