"""What a job stream sends (receiver/event_frames.py): its framing, each event's id, and what a reconnect is owed."""

from __future__ import annotations

import json

from receiver import event_frames as frames

JOB = {"id": "job_x", "status": "submitted", "bfl_status": "Pending", "progress": 0.3, "cost": None, "waiting": None,
       "error": None, "attempts": {"polls": 1}, "updated_at": "2026-11-24T10:00:00Z"}


def test_an_event_is_one_block_of_lines_with_its_name_id_and_the_job_json():
    framed = frames.frame("job", frames.encode(JOB), "17-abcdef012345").decode()
    assert framed.endswith("\n\n") and framed.count("\n") == 4
    lines = framed.splitlines()
    assert lines[:2] == ["event: job", "id: 17-abcdef012345"]
    assert json.loads(lines[2].removeprefix("data: ")) == JOB
    assert frames.KEEPALIVE == b": keepalive\n\n"


def test_a_job_with_a_newline_in_its_prompt_stays_one_data_line():
    framed = frames.frame("job", frames.encode({**JOB, "prompt": "two\nlines"}), "1-abcdef012345").decode()
    assert [line for line in framed.splitlines() if line.startswith("data:")] == [framed.splitlines()[2]]
    assert framed.count("\n") == 4  # three lines and the blank one: no line break from the prompt


def test_the_version_changes_with_what_a_stream_shows_and_nothing_else():
    base = frames.version(1.5, JOB)
    assert base.startswith("1500-")
    assert frames.shown({**JOB, "attempts": {"polls": 2}}) == frames.shown(JOB)  # not shown as a change
    for name, value in (("status", "ready"), ("bfl_status", "Generating"), ("progress", 0.4),
                        ("cost", {"credits": 6.0}), ("waiting", {"reason": "bfl_slots"}), ("error", {"code": "x"})):
        assert frames.shown({**JOB, name: value}) != frames.shown(JOB), name


def test_a_reconnect_is_owed_the_job_unless_it_saw_that_state():
    now = frames.version(2.0, JOB)
    assert not frames.owed(now, now)
    assert not frames.owed(frames.version(1.0, JOB), now)  # an older write that showed the same
    assert frames.owed(frames.version(1.0, {**JOB, "progress": 0.1}), now)
    for strange in (None, "", "nonsense", "12-XYZ", "1" * 20 + "-abcdef012345"):
        assert frames.owed(strange, now)


def test_since_reads_only_ids_this_service_gives():
    assert frames.since("1795523068115-46cca39b8ba7") == 1795523068115
    assert frames.since(" 12-46cca39b8ba7 ") == 12
    assert frames.since(None) is None and frames.since("12") is None and frames.since("x-46cca39b8ba7") is None


def test_chunks_frame_a_payload_for_http_1_1():
    assert frames.chunk(b"hello") == b"5\r\nhello\r\n"
    assert frames.chunk(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert frames.LAST_CHUNK == b"0\r\n\r\n"


def test_a_batch_event_is_owed_when_its_counts_status_or_cost_change_and_not_otherwise():
    running = {"id": "bat_1", "status": "running", "counts": {"queued": 2, "total": 2}, "cost": {"credits": 0},
               "ended_at": None, "metadata": {"a": 1}, "progress": 0}
    seen = frames.event_id(1, frames.shown_batch(running))
    assert not frames.owed(seen, frames.event_id(2, frames.shown_batch({**running, "metadata": {"b": 2}})))
    for change in ({"counts": {"queued": 1, "stored": 1, "total": 2}}, {"status": "canceled"},
                   {"cost": {"credits": 3}}, {"ended_at": "2026-11-27T00:00:00Z"}):
        assert frames.owed(seen, frames.event_id(2, frames.shown_batch({**running, **change})))
