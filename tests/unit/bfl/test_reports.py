"""Reading BFL's answers (fluxhook/bfl/reports.py): callback bodies into reports, what is accepted, what is refused;
BFL's price of a task, every unusable figure unknown, never an error; BFL's words in every shape it sends them, a line
a person reads, never the repr of the JSON they came in."""

from __future__ import annotations

import json
import math

import pytest

from fluxhook.bfl.reports import (
    MAX_CALLBACK_BYTES,
    MAX_CREDITS,
    MAX_WORDS,
    BFLReport,
    Cost,
    parse_callback,
    parse_cost,
    report_from_payload,
    result_cost,
    words,
)
from fluxhook.core.errors import InvalidRequest


def body(payload) -> bytes:
    return json.dumps(payload).encode()


def test_parse_callback_ready_with_sample():
    event = parse_callback(body({"id": "abc-123", "status": "Ready",
                                 "result": {"sample": "https://delivery.eu.bfl.ai/x.png", "seed": 42}}))
    assert event == BFLReport(bfl_id="abc-123", status="Ready", sample_url="https://delivery.eu.bfl.ai/x.png", seed=42)


def test_parse_callback_accepts_task_id_for_id():
    event = parse_callback(body({"task_id": "t-1", "status": "SUCCESS", "result": {"sample": "https://x/y"}}))
    assert (event.bfl_id, event.status, event.sample_url) == ("t-1", "Ready", "https://x/y")


def test_parse_callback_error_with_message():
    event = parse_callback(body({"id": "abc", "status": "Error", "error": "Generation failed",
                                 "message": "the model crashed"}))
    assert (event.bfl_id, event.status, event.sample_url) == ("abc", "Error", None)
    assert event.message == "the model crashed"


def test_parse_callback_error_without_message_field_uses_error():
    event = parse_callback(body({"id": "abc", "status": "Error", "error": "Generation failed"}))
    assert event.message == "Generation failed"


def test_parse_callback_message_is_bounded():
    event = parse_callback(body({"id": "abc", "status": "Failed", "message": "x" * 10_000}))
    assert event.message is not None and len(event.message) <= 500


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("failed", "Failed"),
        ("FAILED", "Failed"),
        ("error", "Error"),
        ("Request Moderated", "Request Moderated"),
        ("request_moderated", "Request Moderated"),
        ("CONTENT MODERATED", "Content Moderated"),
        ("Content Moderated", "Content Moderated"),
        ("pending", "Pending"),
        ("Task not found", "Task not found"),
    ],
)
def test_parse_callback_status_spellings(word, expected):
    event = parse_callback(body({"id": "abc", "status": word}))
    assert event.status == expected
    assert event.sample_url is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b"\xff\xfe\x00garbage",
        b"null",
        b"42",
        b'"Ready"',
        body([{"id": "abc", "status": "Ready", "result": {"sample": "https://x/y"}}]),
        body({"status": "Error"}),
        body({"id": "", "status": "Error"}),
        body({"id": "   ", "status": "Error"}),
        body({"id": None, "status": "Error"}),
        body({"id": 123, "status": "Error"}),
        body({"id": ["abc"], "status": "Error"}),
        body({"id": "x" * 1000, "status": "Error"}),
        body({"id": "abc"}),
        body({"id": "abc", "status": None}),
        body({"id": "abc", "status": 1}),
        body({"id": "abc", "status": ["Ready"]}),
        body({"id": "abc", "status": "\u0000\u0001"}),
        body({"id": "abc", "status": ""}),
        body({"id": "abc", "status": "Ready"}),
        body({"id": "abc", "status": "Ready", "result": None}),
        body({"id": "abc", "status": "Ready", "result": {}}),
        body({"id": "abc", "status": "Ready", "result": {"sample": ""}}),
        body({"id": "abc", "status": "Ready", "result": {"sample": 5}}),
        body({"id": "abc", "status": "Ready", "result": "https://x/y"}),
        body({"id": "abc", "status": "SUCCESS", "result": []}),
    ],
)
def test_parse_callback_refusals(raw):
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


@pytest.mark.parametrize("opening,closing", [("[", "]"), ('{"a":', "}")])
def test_parse_callback_deep_nesting_is_invalid_request_not_recursion_error(opening, closing):
    depth = 100_000
    raw = (opening * depth + "1" + closing * depth).encode()
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


def test_parse_callback_deep_nesting_inside_a_valid_object():
    raw = b'{"id": "abc", "status": "Error", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidRequest):
        parse_callback(raw)


def test_max_callback_bytes_is_1_mib():
    assert MAX_CALLBACK_BYTES == 1024 * 1024


# --- BFL's price ---

def test_a_submission_answer_gives_credits_and_megapixels():
    answer = {"id": "t1", "polling_url": "https://api.bfl.ai/v1/get_result?id=t1", "cost": 3.0, "input_mp": 1.0,
              "output_mp": 1.17}
    assert parse_cost(answer) == Cost(credits=3.0, input_mp=1.0, output_mp=1.17)
    assert parse_cost({"cost": 7}) == Cost(credits=7.0)
    assert parse_cost({"cost": 0, "input_mp": 0, "output_mp": 0}) == Cost(0.0, 0.0, 0.0)


@pytest.mark.parametrize("value", [None, "3.0", "", True, False, -0.5, -1, math.nan, math.inf, -math.inf,
                                   MAX_CREDITS + 1, 1e300, 10**400, [3], {"credits": 3}])
def test_an_unusable_figure_is_unknown(value):
    assert parse_cost({"cost": value}) is None
    assert parse_cost({"cost": value, "output_mp": 1.0}) == Cost(credits=None, output_mp=1.0)
    assert parse_cost({"cost": 2.5, "input_mp": value, "output_mp": value}) == Cost(credits=2.5)


def test_no_figures_at_all_is_no_cost():
    for answer in ({}, {"id": "t1"}, None, "cost", [1, 2], {"cost": "free", "input_mp": "a", "output_mp": -2}):
        assert parse_cost(answer) is None


def test_figures_are_rounded_as_bfl_states_them():
    assert parse_cost({"cost": 0.1 + 0.2, "output_mp": 1.23456789}) == Cost(credits=0.3, output_mp=1.2346)


def test_a_result_may_carry_the_price_beside_its_status_or_inside_result():
    assert result_cost({"id": "t", "status": "Ready", "cost": 0.85, "result": {"sample": "x"}}) == Cost(credits=0.85)
    assert result_cost({"id": "t", "status": "Ready", "result": {"sample": "x", "cost": 4}}) == Cost(credits=4.0)
    assert result_cost({"id": "t", "status": "Ready", "result": {"sample": "x"}}) is None
    assert result_cost({"id": "t", "status": "Ready", "result": "not an object"}) is None


def test_only_known_figures_become_record_fields():
    assert Cost(credits=3.0, output_mp=1.0).fields() == {"cost_credits": 3.0, "cost_output_mp": 1.0}
    assert Cost().fields() == {}


# --- BFL's words ---

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
