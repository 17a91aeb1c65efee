"""BFL's status words beyond the known ones: FLUX 3 video's Reasoning and Generating, and any word
BFL adds later, mean "still running", with BFL's ``progress``: the rules on their own (``fluxhook.core.job``).
Polls answered by a spy host standing in for BFL: tests/unit/lifecycle/test_checking_status_words.py; callbacks
through the Procfile's processes: tests/e2e/callbacks/test_status_words.py.
"""

from __future__ import annotations

import pytest

from fluxhook.bfl.reports import report_from_payload
from fluxhook.core import job as st

# -- the rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, word", [
    ("Reasoning", "Reasoning"),
    ("Generating", "Generating"),
    ("  Generating\n", "Generating"),
    ("Up\x00scaling", "Upscaling"),
    ("pending", "Pending"),
    ("SUCCESS", "Ready"),
    ("Processing", "Processing"),
    ("queued", "queued"),
    ("Running", "Running"),
    ("x" * 10_000, "x" * 40),
    ("   ", None),
    ("\x00\x07", None),
])
def test_a_status_word_is_kept_as_sent_and_cut(raw, word):
    assert st.bfl_status_word(raw) == word


@pytest.mark.parametrize("word, running", [
    ("Pending", True), ("Reasoning", True), ("Generating", True), ("Some Word Of 2027", True),
    ("Ready", False), ("Error", False), ("Failed", False), ("Request Moderated", False),
    ("Content Moderated", False), ("Task not found", False),
])
def test_every_word_but_ready_and_the_failures_is_running(word, running):
    assert st.is_running(word) is running


def test_metric_labels_stay_few_whatever_bfl_says():
    assert st.status_label("Reasoning") == st.status_label("Generating") == "running"
    assert st.status_label("Request Moderated") == "request_moderated"
    assert st.status_label("Pending") == "pending"


@pytest.mark.parametrize("value, fraction", [
    (0.25, 0.25), (0, 0.0), (1, 1.0), (42, 0.42), (100, 1.0), (250, 1.0),
    (-1, None), (True, None), ("0.5", None), (None, None), (float("nan"), None),
])
def test_progress_is_a_fraction(value, fraction):
    assert st.progress_value(value) == fraction


def test_a_report_carries_the_word_and_its_progress():
    report = report_from_payload({"id": "t", "status": "Reasoning", "progress": 0.12, "details": None})
    assert (report.status, report.progress, report.sample_url) == ("Reasoning", 0.12, None)
