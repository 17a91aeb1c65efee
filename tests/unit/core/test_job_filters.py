"""The job list's parameters (fluxhook/core/job_filters.py): which it takes, how each is read, the prompt rule."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fluxhook.core.errors import InvalidRequest, UnknownField
from fluxhook.core.job_filters import (
    DEFAULT_LIMIT,
    EVERY_JOB,
    JobFilter,
    parse_listing,
    parse_time,
    prompt_holds,
)


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_every_parameter_is_read_into_the_listing():
    listing = parse_listing([("status", "stored"), ("model", "flux-2-pro"), ("key_id", "key_0123456789abcdef"),
                             ("account", "eu"), ("q", "Lighthouse"), ("from", "2026-11-21"),
                             ("to", "2026-11-22T10:30:00Z"), ("limit", "5"), ("cursor", "job_X")])
    assert listing.filter == JobFilter(status="stored", model="flux-2-pro", key_id="key_0123456789abcdef",
                                       account="eu", text="Lighthouse", since=_at("2026-11-21T00:00:00"),
                                       until=_at("2026-11-22T10:30:00"))
    assert (listing.limit, listing.cursor) == (5, "job_X")


def test_no_parameters_and_empty_ones_are_every_job():
    assert parse_listing([]).filter == EVERY_JOB and parse_listing([]).limit == DEFAULT_LIMIT
    assert parse_listing([("q", ""), ("status", ""), ("from", "")]).filter == EVERY_JOB


@pytest.mark.parametrize(("name", "hint"), [("prompt", "to find jobs by their prompt, use q"), ("deadline", "("),
                                            ("since", "use from"), ("Status", "(")])
def test_an_unknown_parameter_is_named(name, hint):
    with pytest.raises(UnknownField) as refused:
        parse_listing([("status", "stored"), (name, "x")])
    assert refused.value.field == name and refused.value.code == "unknown_field" and refused.value.status == 400
    assert refused.value.message.startswith(f"unknown query parameter '{name}': {hint}")
    assert ("GET /v1/jobs takes status, model, key_id, batch_id, account, end_user, q, from, to, limit, cursor"
            in refused.value.message)


def test_a_repeated_parameter_is_refused():
    with pytest.raises(InvalidRequest, match="give 'status' once"):
        parse_listing([("status", "stored"), ("status", "failed")])


@pytest.mark.parametrize("pairs", [
    [("status", "bogus")], [("model", "Flux Pro!")], [("account", "EU!")], [("q", "x" * 201)],
    [("limit", "0")], [("limit", "101")], [("limit", "ten")],
    [("from", "2026-11-22"), ("to", "2026-11-21")], [("from", "2026-11-21T10:00Z"), ("to", "2026-11-21T10:00Z")],
])
def test_bad_values_are_refused(pairs):
    with pytest.raises(InvalidRequest) as refused:
        parse_listing(pairs)
    assert not isinstance(refused.value, UnknownField)


def test_dates_and_times_read_as_documented():
    # A date is its whole UTC day: 'from' its first instant, 'to' the next day's (the first left out).
    assert parse_time("from", "2026-11-21") == _at("2026-11-21T00:00:00")
    assert parse_time("to", "2026-11-21") == _at("2026-11-22T00:00:00")
    assert parse_time("to", "2026-12-31") == _at("2027-01-01T00:00:00")
    # A time without an offset is UTC; with one, as it says; minutes, seconds and fractions.
    assert parse_time("from", "2026-11-21T10:00") == _at("2026-11-21T10:00:00")
    assert parse_time("from", "2026-11-21T10:00:05Z") == _at("2026-11-21T10:00:05")
    assert parse_time("from", "2026-11-21T11:00:05.250+01:00") == _at("2026-11-21T10:00:05.250")
    assert parse_time("to", "2026-11-21T05:00:00-05:00") == _at("2026-11-21T10:00:00")


@pytest.mark.parametrize(("text", "said"), [
    ("yesterday", "must be a date (2026-11-21) or a time"), ("2026-02-30", "not a real date"),
    ("2026-11-21T25:00Z", "not a real time"), ("21/11/2026", "must be a date"), ("1732183200", "must be a date"),
    ("2026-11-21 10:00", "must be a date"), ("2026-11-21T10:00:00 01:00", "%2B01:00"),
])
def test_other_times_are_refused_saying_why(text, said):
    with pytest.raises(InvalidRequest) as refused:
        parse_time("from", text)
    assert said in refused.value.message and "'from'" in refused.value.message


def test_the_prompt_rule_ignores_case_in_any_script():
    assert prompt_holds("A Lighthouse at dusk", "lighthouse") and prompt_holds("a lighthouse", "LIGHTHOUSE")
    assert prompt_holds("Café ÉCLAIR", "éclair") and prompt_holds("Straße", "STRASSE")
    assert prompt_holds("Москва ночью", "МОСКВА")
    assert not prompt_holds("a red fox", "lighthouse") and not prompt_holds(None, "fox")
