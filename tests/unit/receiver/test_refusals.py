"""Refusals repeated before any permit (receiver/refusals.py)."""

from __future__ import annotations

from receiver.refusals import Refusals


def test_a_refusal_is_repeated_for_its_lane_and_path_with_its_retry_after_counted_down_until_it_lapses():
    now = [100.0]
    refusals = Refusals(clock=lambda: now[0])
    headers = [("Content-Type", "application/json"), ("Retry-After", "3")]
    refusals.keep("key:a", "/v1/jobs", 103.0, "429 TOO MANY REQUESTS", headers, b'{"error": {}}')
    now[0] = 101.2
    status, again, body = refusals.answer("key:a", "/v1/jobs")
    assert status.startswith("429") and body == b'{"error": {}}'
    assert dict(again)["Retry-After"] == "2"
    assert refusals.answer("key:b", "/v1/jobs") is None  # another key's reads are its own
    assert refusals.answer("key:a", "/v1/batches") is None
    now[0] = 103.0
    assert refusals.answer("key:a", "/v1/jobs") is None


def test_a_read_refused_for_its_rate_refuses_every_get_of_its_key_under_v1_and_elsewhere_its_path_alone():
    from receiver.bulkheads import refusal_scope

    assert {refusal_scope(p) for p in ("/v1/jobs", "/v1/jobs/job_1/image", "/v1/usage")} == {"/v1/"}
    assert refusal_scope("/metrics") == "/metrics"
