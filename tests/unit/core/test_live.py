"""The rule that a running job never shows BFL's task going backwards (fluxhook/core/live.py)."""

from __future__ import annotations

import pytest

from fluxhook.core.live import Shown, earlier, shown


@pytest.mark.parametrize(("word", "than", "is_earlier"), [
    ("Pending", "Reasoning", True),
    ("Pending", "Generating", True),
    ("Reasoning", "Generating", True),
    ("Generating", "Reasoning", False),
    ("Reasoning", "Pending", False),
    ("Reasoning", "Reasoning", False),
    ("reasoning", "GENERATING", True),  # BFL's words in any case
    ("Pending", "Upscaling", True),  # a word BFL adds later: only Pending is known to come before it
    ("Reasoning", "Upscaling", False),
    ("Upscaling", "Generating", False),
])
def test_earlier_orders_bfl_running_words(word, than, is_earlier):
    assert earlier(word, than) is is_earlier


def test_a_polled_video_edit_never_goes_back_to_pending():
    # The sequence: Pending, Reasoning 0.32, then a late Pending, then Ready.
    seen, record = [], Shown(None, None)
    for report in (Shown("Pending", None), Shown("Reasoning", 0.32), Shown("Pending", 0.1), Shown("Ready", None)):
        record = shown(record, report)
        seen.append(record)
    assert seen == [Shown("Pending", None), Shown("Reasoning", 0.32), Shown("Reasoning", 0.32), Shown("Ready", None)]


def test_progress_never_decreases_and_a_report_without_one_keeps_it():
    assert shown(Shown("Generating", 0.7), Shown("Generating", 0.5)) == Shown("Generating", 0.7)
    assert shown(Shown("Generating", 0.7), Shown("Generating", None)) == Shown("Generating", 0.7)
    assert shown(Shown("Reasoning", 0.3), Shown("Generating", 0.45)) == Shown("Generating", 0.45)
    # A word held back still brings a greater progress: the task moved on, whatever the word said.
    assert shown(Shown("Generating", 0.5), Shown("Reasoning", 0.6)) == Shown("Generating", 0.6)


@pytest.mark.parametrize("word", ["Ready", "Error", "Failed", "Request Moderated", "Content Moderated",
                                  "Task not found"])
def test_a_word_that_ends_the_task_is_never_held_back(word):
    assert shown(Shown("Generating", 0.9), Shown(word, None)) == Shown(word, None)


def test_anything_running_follows_a_job_that_showed_no_running_word():
    assert shown(Shown(None, None), Shown("Generating", 0.5)) == Shown("Generating", 0.5)
    # After a Ready BFL refuted (the job back to submitted), BFL's running word is taken as it comes.
    assert shown(Shown("Ready", None), Shown("Pending", 0.2)) == Shown("Pending", 0.2)


def test_a_new_word_bfl_adds_goes_forward_but_pending_does_not_follow_it():
    assert shown(Shown("Generating", 0.6), Shown("Upscaling", 0.8)) == Shown("Upscaling", 0.8)
    assert shown(Shown("Upscaling", 0.8), Shown("Pending", None)) == Shown("Upscaling", 0.8)
