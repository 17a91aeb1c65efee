"""Every timeline entry the lifecycle can record reads as plain words (receiver/dashboard_words.py).

The kinds are read from ``timeline.Kind`` and from the code itself (every ``timeline.record``/``timeline.entry``
call in fluxhook/, worker/ and receiver/, parsed), the outcomes from the enums and error classes they come
from; no list of them is written here. Over HTTP, on the job page: tests/e2e/dashboard/test_job_page_words.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fluxhook.core import errors
from fluxhook.core import job as st
from fluxhook.core.outcomes import DownloadOutcome, ReportOutcome
from fluxhook.core.wait_reasons import WaitReason, describe
from fluxhook.lifecycle.steps import timeline
from fluxhook.lifecycle.steps.timeline import Kind
from receiver.dashboard_words import BY_KIND, Sentence, bfl_says, created, ended, sentence, words

ROOT = Path(__file__).resolve().parents[3]
# BFL's status words, as core/job.py names them (BFL_PENDING, ...).
BFL_WORDS = sorted({v for k, v in vars(st).items() if k.startswith("BFL_") and isinstance(v, str)})


def _codes(root: type = errors.FluxhookError) -> set[str]:
    """Every error code a FluxhookError subclass carries."""
    found = {root.code}
    for sub in root.__subclasses__():
        found |= _codes(sub)
    return found


def _recorded() -> list[tuple[str, str, dict]]:
    """Every timeline entry the code records: (where, kind, its literal keyword arguments)."""
    calls = []
    for path in [p for d in ("fluxhook", "worker", "receiver") for p in (ROOT / d).rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "timeline"
                    and node.func.attr in ("record", "entry")):
                continue
            kind = node.args[2 if node.func.attr == "record" else 1]
            literal = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(kind, ast.Attribute):  # Kind.CALLBACK
                calls.append((where, Kind[kind.attr].value, literal))
            else:
                assert isinstance(kind, ast.Constant), f"{where}: a kind the test cannot read"
                calls.append((where, kind.value, literal))
    return calls


def _plain(said: Sentence) -> None:
    """Words a person reads: a title, no code (snake_case) anywhere."""
    assert said.title and "_" not in str(said), said


def test_the_code_records_only_kinds_of_the_enum_and_each_has_its_sentence():
    recorded = _recorded()
    assert {kind for _, kind, _ in recorded} == set(Kind)  # each kind is recorded somewhere, none outside it
    assert set(BY_KIND) == set(Kind)
    for kind in Kind:
        _plain(sentence({"kind": kind}))
    for where, kind, literal in recorded:
        outcome = literal.get("outcome")
        if outcome is not None:  # a literal outcome has its own sentence, not the kind's reading of an unknown one
            said = sentence({"kind": kind, **literal})
            _plain(said)
            assert said != sentence({"kind": kind, **literal, "outcome": "a_later_word"}), where


def test_an_entry_of_a_kind_outside_the_enum_is_refused():
    with pytest.raises(ValueError):
        timeline.entry("job_01JZZZZZZZZZZZZZZZZZZZZZZZ", "a_new_kind")


@pytest.mark.parametrize("result", list(ReportOutcome))
@pytest.mark.parametrize("status", BFL_WORDS + ["Generating", None])
def test_every_callback_reads_whatever_became_of_it(result, status):
    counted = "duplicate" if result == ReportOutcome.DUPLICATE else "accepted"
    for hint in (False, True):
        said = sentence({"kind": "callback", "outcome": counted, "result": result, "bfl_status": status, "hint": hint})
        _plain(said)
        if "_" in result:  # never the code spelled out, as "Callback: Error confirm queued" once read
            assert words(result) not in str(said)
    _plain(sentence({"kind": "callback", "outcome": "kept", "bfl_status": status}))


def test_each_bfl_word_says_what_it_means_of_the_task():
    assert all(bfl_says(word) != f"the task is running ({word})" for word in BFL_WORDS)
    assert bfl_says("Reasoning") == "the task is running (Reasoning)"  # a word BFL adds: the task still runs


@pytest.mark.parametrize("code", sorted(_codes()))
def test_every_error_code_reads_in_words_wherever_it_is_recorded(code):
    for event in ({"kind": "poll", "error": code}, {"kind": "submission", "outcome": code, "account": "eu"},
                  {"kind": "callback", "outcome": "refused", "reason": code},
                  {"kind": "draft_cache", "outcome": "skipped", "error": code, "reason": "why"},
                  {"kind": "download", "outcome": "retry", "error": "BFL's link answered 503", "seconds": 0.4}):
        _plain(sentence(event))
    if code in _codes(errors.BFLError):  # what BFL answers a submission with: each said in its own words
        assert sentence({"kind": "submission", "outcome": code}).text != words(code)


@pytest.mark.parametrize("outcome", list(DownloadOutcome))
def test_every_download_outcome_has_its_sentence(outcome):
    said = sentence({"kind": "download", "outcome": outcome, "seconds": 1.25})
    _plain(said)
    assert said != sentence({"kind": "download", "outcome": "a_later_word", "seconds": 1.25})


@pytest.mark.parametrize("reason", list(WaitReason))
def test_every_wait_says_why(reason):
    said = sentence({"kind": "waiting", "reason": reason, "until": "2027-01-15T08:00:31Z"})
    assert said.text == f"{describe(reason)} until 2027-01-15T08:00:31Z" and describe(reason)


def test_a_failure_called_back_then_confirmed_by_a_poll_reads_as_a_story():
    events = [{"kind": "submission", "outcome": "submitted", "bfl_id": "task-1", "account": "eu"},
              {"kind": "callback", "outcome": "accepted", "bfl_status": "Error", "result": "confirm_queued"},
              {"kind": "poll", "answer": "Error"}]
    story = [str(created(tracked=False)), *(str(sentence(e)) for e in events),
             str(ended(st.FAILED, "BFL reported an error"))]
    assert story == ["Job created",
                     "Sent to BFL: task task-1 (account eu)",
                     "BFL called back: the task failed; checking with BFL",
                     "Asked BFL: the task failed",
                     "Job failed: BFL reported an error"]
    assert [sentence(e).tone for e in events] == ["ok", "warn", "warn"]


def test_an_entry_this_release_does_not_know_still_reads_as_words():
    assert str(sentence({"kind": "cancel_request", "outcome": "by_app"})) == "Cancel request: by app"
    assert str(sentence({"kind": "callback", "outcome": "refused", "reason": "bad_secret"})) == (
        "Callback refused: it was not signed with this job's secret")
    assert str(created(tracked=True)).startswith("Tracking started: ")
    assert str(ended(st.STORED)) == "Job stored: its file is ready to view and download"
