"""Reading BFL's callback bodies into reports (fluxhook/bfl/reports.py): what is accepted, what is refused."""

from __future__ import annotations

import json

import pytest

from fluxhook.bfl.reports import MAX_CALLBACK_BYTES, BFLReport, parse_callback
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
