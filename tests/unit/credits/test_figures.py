"""Credits and a balance's age as people read them (fluxhook/credits/figures.py), alike on the dashboard, in
``fluxhook accounts`` and in ``fluxhook doctor``."""

from __future__ import annotations

from fluxhook.credits.figures import age, balance_words, epoch, format_credits, read_ago


def test_credits_are_written_with_thousands_and_never_in_exponent_form():
    assert [format_credits(c) for c in (1e6, 12.5, 0.0, 999_944.29, 1e9)] == [
        "1,000,000", "12.50", "0", "999,944.29", "1,000,000,000"]


def test_an_age_is_as_coarse_as_a_reader_needs():
    assert [age(s) for s in (0.2, 42.7, 3599, 7500)] == ["just now", "42 s", "59 min", "2 h 05 min"]
    assert (read_ago(100.0, 100.4), read_ago(100.0, 280.0)) == ("read just now", "read 3 min ago")
    assert read_ago(100.0, 90.0) == "read just now"  # a clock a little behind the reader's


def test_a_balance_and_when_it_was_read():
    assert balance_words(1e6, 1000.0, 1040.0) == "1,000,000 credits, read 40 s ago"
    assert balance_words(None, None, 1040.0) == "not read lately"


def test_the_apis_times_read_back():
    assert epoch("2026-11-18T11:06:40Z") == 1_795_000_000.0 and epoch(None) is None
