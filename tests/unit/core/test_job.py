"""A job (fluxhook/core/job.py): its record's ids, timestamps, and the round trip from Redis hash to API answer; its
statuses, the moves between them and what BFL's status words mean; Cancel-After and how a job ended on purpose ends.

No Redis: the hash is what JobStore would write; tests/unit/store/test_jobs.py covers the store itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from fluxhook.core import job as st
from fluxhook.core.errors import InvalidCancelAfter, InvalidRequest
from fluxhook.core.job import Job, is_job_id, iso, new_job_id
from fluxhook.store.records import encode_fields, job_from_hash

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_new_job_id_shape():
    for _ in range(200):
        jid = new_job_id()
        assert jid.startswith("job_")
        assert len(jid) == 4 + 26
        assert set(jid[4:]) <= CROCKFORD
        assert is_job_id(jid)


def test_new_job_ids_are_unique():
    ids = {new_job_id(1_700_000_000.0) for _ in range(2000)}
    assert len(ids) == 2000


def test_new_job_ids_sort_by_time():
    times = [0.0, 0.005, 1.0, 1_000_000.0, 1_700_000_000.0, 1_700_000_000.01, 1_700_000_000.02,
             1_800_000_000.5, 4_000_000_000.0, 200_000_000_000.0]
    for _ in range(20):
        ids = [new_job_id(t) for t in times]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)


def test_new_job_id_time_prefix_is_the_millisecond():
    # same millisecond: same 10-char time prefix; next millisecond: greater prefix
    a, b = new_job_id(1_700_000_000.000), new_job_id(1_700_000_000.0004)
    c = new_job_id(1_700_000_000.002)
    assert a[:14] == b[:14]
    assert c[:14] > a[:14]


@pytest.mark.parametrize(
    "text",
    [
        "",
        None,
        "../etc/passwd",
        "job_x",
        "job_",
        "job_../../../../etc/passwd",
        "JOB_01J00000000000000000000000",
        "job_01j00000000000000000000000",
        "job_01J0000000000000000000000",     # 25 chars
        "job_01J000000000000000000000000",   # 27 chars
        "job_01I00000000000000000000000",    # I is not Crockford
        "job_01L00000000000000000000000",
        "job_01O00000000000000000000000",
        "job_01U00000000000000000000000",
        " job_01J00000000000000000000000",
        "job_01J00000000000000000000000 ",
        "job_01J00000000000000000000000\n",
        "job_01J0000000000000000000000/",
        "01J00000000000000000000000",
    ],
)
def test_is_job_id_refuses(text):
    assert is_job_id(text) is False


def test_is_job_id_refuses_lowercase_of_a_real_id():
    jid = new_job_id()
    assert is_job_id(jid)
    assert not is_job_id(jid.lower())
    assert not is_job_id("job_" + jid[4:].lower())


def test_iso():
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00Z"
    ts = datetime(2026, 11, 21, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    assert iso(ts) == "2026-11-21T10:00:00Z"
    assert iso(ts + 0.999) == "2026-11-21T10:00:00Z"
    assert iso(ts + 61.5) == "2026-11-21T10:01:01Z"


API_JOB_FIELDS = {"id", "bfl_id", "model", "status", "bfl_status", "source", "created_at", "updated_at",
                   "completed_at", "image", "error", "metadata", "attempts"}
# BFL's progress while the task runs, and the files a video result brings.
API_JOB_FIELDS |= {"progress", "video", "draft_cache"}
# Provenance: the prompt, BFL's seed and what the task cost.
API_JOB_FIELDS |= {"prompt", "seed", "cost"}
# Its deadline (Cancel-After), null without one.
API_JOB_FIELDS |= {"deadline"}
# The app key that created the job (null for an admin token's).
API_JOB_FIELDS |= {"key_id", "account"}
# The app's own user it was made for (null when none was named).
API_JOB_FIELDS |= {"end_user"}
# Why a queued job waits (docs/fair-share.md; null when it does not).
API_JOB_FIELDS |= {"waiting"}
# The batch it is an item of and its place there (docs/api.md; null for a single job).
API_JOB_FIELDS |= {"batch_id", "batch_index"}


def _stored_hash(job: Job) -> dict[str, str]:
    """What JobStore.create writes to Redis for ``job`` (None fields are left out)."""
    flat = encode_fields({k: v for k, v in job.__dict__.items() if v is not None})
    return dict(zip(flat[::2], flat[1::2], strict=False))


def test_job_round_trip_of_every_spec_field():
    created = datetime(2026, 11, 21, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    job = Job(
        id=new_job_id(created),
        status="stored",
        model="flux-2-pro",
        bfl_id="abc-123",
        bfl_status="Ready",
        source="webhook",
        created_at=created,
        updated_at=created + 5.25,
        completed_at=created + 9.5,
        image={"content_type": "image/png", "size": 1234, "sha256": "ab" * 32, "width": 64, "height": 48},
        error=None,
        metadata={"user": "u1", "tags": ["a", "b"], "n": 3, "nested": {"ü": True}},
        webhooks=2,
        polls=1,
        downloads=3,
    )
    data = _stored_hash(job)
    assert all(isinstance(v, str) for v in data.values())
    again = job_from_hash(data)
    assert again.to_api("https://x/img") == job.to_api("https://x/img")
    api = again.to_api("https://x/img")
    assert set(api) == API_JOB_FIELDS
    # An image job: no progress (it ended), no video, no draft cache.
    assert (api.pop("progress"), api.pop("video"), api.pop("draft_cache")) == (None, None, None)
    assert (api.pop("prompt"), api.pop("seed"), api.pop("cost"), api.pop("key_id"), api.pop("account")) == (None,) * 5
    assert api.pop("waiting") is None  # a stored job waits for nothing
    assert api.pop("deadline") is None  # made without Cancel-After
    assert (api.pop("batch_id"), api.pop("batch_index")) == (None, None)  # a single job
    assert api.pop("end_user") is None  # made naming no end user
    assert api == {
        "id": job.id,
        "bfl_id": "abc-123",
        "model": "flux-2-pro",
        "status": "stored",
        "bfl_status": "Ready",
        "source": "webhook",
        "created_at": "2026-11-21T10:00:00Z",
        "updated_at": "2026-11-21T10:00:05Z",
        "completed_at": "2026-11-21T10:00:09Z",
        "image": {"url": "https://x/img", "content_type": "image/png", "size": 1234, "sha256": "ab" * 32,
                  "width": 64, "height": 48},
        "error": None,
        "metadata": {"user": "u1", "tags": ["a", "b"], "n": 3, "nested": {"ü": True}},
        "attempts": {"webhooks": 2, "polls": 1, "downloads": 3},
    }
    json.dumps(api)  # serialisable as the API answer


def test_job_round_trip_of_a_failed_job():
    job = Job(id=new_job_id(), status="failed", model="flux-kontext-max", bfl_id="t-9", bfl_status="Error",
              source="poll", created_at=100.0, updated_at=200.0, completed_at=200.0,
              error={"code": "bfl_error", "message": "BFL reported that the generation failed"}, polls=4)
    api = job_from_hash(_stored_hash(job)).to_api()
    assert api["error"] == {"code": "bfl_error", "message": "BFL reported that the generation failed"}
    assert api["image"] is None
    assert api["source"] == "poll"
    assert api["bfl_status"] == "Error"
    assert api["completed_at"] == "1970-01-01T00:03:20Z"
    assert api["attempts"] == {"webhooks": 0, "polls": 4, "downloads": 0}


def test_job_round_trip_of_a_fresh_job_has_nulls_and_empty_metadata():
    job = Job(id=new_job_id(), status="submitted", created_at=1.0, updated_at=1.0)
    api = job_from_hash(_stored_hash(job)).to_api()
    assert set(api) == API_JOB_FIELDS
    for name in ("bfl_id", "model", "bfl_status", "source", "completed_at", "image", "error", "key_id", "waiting"):
        assert api[name] is None, name
    assert api["metadata"] == {}
    assert api["attempts"] == {"webhooks": 0, "polls": 0, "downloads": 0}
    assert api["status"] == "submitted"


def test_job_from_hash_reads_empty_strings_as_null():
    data = {"id": new_job_id(), "status": "ready", "bfl_id": "", "bfl_status": "", "source": "",
            "created_at": "5", "updated_at": "6", "completed_at": "", "image": "", "error": "",
            "metadata": "", "webhooks": "1", "polls": "0", "downloads": "0"}
    job = job_from_hash(data)
    assert (job.bfl_id, job.bfl_status, job.source, job.completed_at, job.image, job.error) == (None,) * 6
    assert job.metadata == {}
    assert job.webhooks == 1
    assert not job.terminal


@pytest.mark.parametrize("status_name", ["stored", "failed", "moderated", "expired"])
def test_job_terminal_property(status_name):
    assert Job(id=new_job_id(), status=status_name).terminal


LONG = "a red fox in the snow, " + "ünïcödé ✓ " * 300  # over 2,000 characters, many of them several bytes


def test_the_prompt_kept_is_the_inputs_first_2000_characters():
    assert Job(id="job_x", status="queued", input={"prompt": LONG}).prompt == LONG[:2000]
    for task_input in ({"input_image": "aGVsbG8="}, {"prompt": ""}, {"prompt": ["not", "text"]}, None):
        assert Job(id="job_x", status="queued", input=task_input).prompt is None
    # Kept in pieces of at most 64 bytes, never inside a character, and read back whole.
    fields = encode_fields({"prompt": LONG[:2000]})
    assert all(len(value.encode()) <= 64 for value in fields[1::2])
    assert job_from_hash(dict(zip(fields[0::2], fields[1::2], strict=False), id="job_x", status="stored")).prompt == LONG[:2000]


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


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h30m", 5400), ("1h", 3600), ("5s", 5), ("24h", 86400), ("23h59m60s", 86400),
    ("90m", 5400), ("1h0m5s", 3605), ("2M", 120), (" 45s ", 45), ("0h0m5s", 5),
])
def test_a_duration_is_read_as_seconds(text, seconds):
    assert st.parse_cancel_after(text) == seconds


@pytest.mark.parametrize("text", [
    "", " ", "30", "s", "h", "1.5m", "-5s", "5 s", "30sec", "1m30", "30s5m", "5m1h", "1d", "PT5M", "5s5s",
    "99999999999999999999s", "\u0665s",
])
def test_a_malformed_value_is_refused_saying_what_to_send(text):
    with pytest.raises(InvalidCancelAfter) as refused:
        st.parse_cancel_after(text)
    assert refused.value.status == 400 and refused.value.code == "invalid_cancel_after"
    assert "30s, 5m or 1h30m" in refused.value.message


@pytest.mark.parametrize("text", ["4s", "0s", "24h1s", "25h", "1441m", "86401s"])
def test_a_value_outside_5s_to_24h_is_refused_naming_the_range(text):
    with pytest.raises(InvalidCancelAfter, match="from 5s to 24h"):
        st.parse_cancel_after(text)


def test_the_refusal_is_no_invalid_request_so_the_drop_in_answers_400_not_bfls_422():
    assert not issubclass(InvalidCancelAfter, InvalidRequest)


def test_a_cancel_ends_every_running_job_canceled_and_leaves_an_ended_one():
    assert st.cancel_ending(st.QUEUED).status == st.CANCELED
    assert "nothing was charged" in st.cancel_ending(st.QUEUED).message
    for sent in (st.SUBMITTED, st.READY):
        ending = st.cancel_ending(sent)
        assert (ending.status, ending.code) == (st.CANCELED, "canceled") and "charge stays" in ending.message
    for ended in st.TERMINAL:
        assert st.cancel_ending(ended) is None


def test_a_deadline_aborts_an_unsent_job_and_cancels_a_sent_one():
    assert st.deadline_ending(st.QUEUED) == st.ABORTED_AT_DEADLINE
    assert st.ABORTED_AT_DEADLINE.status == st.ABORTED
    for sent in (st.SUBMITTED, st.READY):
        assert st.deadline_ending(sent) == st.CANCELED_AT_DEADLINE
    assert st.CANCELED_AT_DEADLINE.code == st.ABORTED_AT_DEADLINE.code == "deadline_exceeded"
    for ended in st.TERMINAL:
        assert st.deadline_ending(ended) is None


def test_every_ending_is_a_move_the_rules_allow():
    for status in st.ACTIVE:
        for rule in (st.cancel_ending, st.deadline_ending):
            ending = rule(status)
            assert ending is not None and st.can_transition(status, ending.status)


def test_deadline_passed():
    assert not st.deadline_passed(None, 10.0)
    assert not st.deadline_passed(10.5, 10.0)
    assert st.deadline_passed(10.0, 10.0) and st.deadline_passed(9.0, 10.0)
