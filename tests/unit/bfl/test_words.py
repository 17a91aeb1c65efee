"""BFL's words in every shape it sends them (fluxhook/bfl/words.py): a line a person reads, never the repr of the
JSON they came in."""

from __future__ import annotations

import pytest

from fluxhook.bfl.reports import report_from_payload
from fluxhook.bfl.words import MAX_WORDS, words

# What BFL sends about a failed generation: in a callback at the top level, in a poll's answer under "details".
FAILURE = {"error": "Generation failed", "message": "Internal error"}


@pytest.mark.parametrize(("value", "said"), [
    ("Internal error", "Internal error"),
    ("  two\n lines\tand\x00 a NUL ", "two lines and a NUL"),
    (FAILURE, "Internal error"),
    ({"error": "Generation failed"}, "Generation failed"),
    ({"Moderation Reasons": ["Simulated moderation", "Derivative work"]},
     "Moderation Reasons: Simulated moderation; Derivative work"),
    ({"details": {"message": "deep down"}}, "deep down"),
    ({"code": 500, "retry": True}, "code: 500"),
    (["a", "a", "b"], "a; b"),
    ([{"loc": ["body", "width"], "msg": "Input should be a valid integer", "type": "int_parsing"},
      {"loc": ["body", "input_image", 0], "msg": "Invalid URL", "type": "url"},
      {"msg": "Value error, too many images", "type": "value_error"}],
     "width: Input should be a valid integer; input_image.0: Invalid URL; Value error, too many images"),
    (12.5, "12.5"),
])
def test_words_are_text_in_every_shape(value, said):
    assert words(value) == said


@pytest.mark.parametrize("value", [None, "", "   ", {}, [], {"message": None}, True, [[[[["too deep"]]]]]])
def test_nothing_said_is_none(value):
    assert words(value) is None


def test_words_are_bounded():
    said = words({"message": "x " * 10_000})
    assert said is not None and len(said) == MAX_WORDS and said.endswith("…")


@pytest.mark.parametrize("payload", [
    {"id": "t-1", "status": "Error", **FAILURE},  # a callback
    {"id": "t-1", "status": "Error", "result": None, "progress": None, "details": FAILURE},  # a poll's answer
])
def test_a_failure_report_carries_bfls_words_whether_called_back_or_polled(payload):
    report = report_from_payload(payload)
    assert report.status == "Error" and report.message == "Internal error"
